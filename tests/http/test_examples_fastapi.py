"""examples/fastapi_app runs as its README says: uvicorn serves the shop, huihua's accounts and
login work in it, and its own /orders route answers 200 signed in and huihua's 401 otherwise."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from servicekit import PASSWORD, START_TIMEOUT, free_port, serve_env, wait_for_port

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fastapi_app"
pytestmark = pytest.mark.slow


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = serve_env(tmp_path, HUIHUA_STORE=f"sqlite:///{tmp_path}/shop.db")
    log = (tmp_path / "uvicorn.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app:app", "--no-proxy-headers", "--port", str(port),
         "--log-level", "info"],
        cwd=EXAMPLE, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for_port(port, proc, timeout=START_TIMEOUT)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            code = proc.wait(15)
        finally:
            log.close()
        output = (tmp_path / "uvicorn.log").read_text(errors="replace")
        assert code in (0, -15), output  # uvicorn re-raises the SIGTERM it handled
        assert "Application shutdown complete" in output and "Traceback" not in output, output


def error_code(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return str(body["error"]["code"])


def test_shop_orders_behind_a_login(shop: str) -> None:
    header = {"X-Session-Transport": "header"}
    with httpx.Client(base_url=shop, timeout=30) as http:
        assert http.get("/catalogue").json() == ["龙井茶 250g", "碧螺春 100g"]  # the shop's own lifespan ran
        assert error_code(http.get("/orders"), 401) == "not_authenticated"
        assert error_code(http.get("/orders", headers=header), 401) == "not_authenticated"
        r = http.post("/v1/accounts", json={"username": "alice", "password": PASSWORD}, headers=header)
        assert r.status_code == 201, r.text
        user_id = r.json()["user"]["id"]
        r = http.post("/v1/auth/login", json={"username": "alice", "password": PASSWORD}, headers=header)
        assert r.status_code == 200, r.text
        token = r.json()["token"]
        assert r.headers["x-session-token"] == token
        bearer = {"Authorization": f"Bearer {token}"}
        r = http.get("/orders", headers=bearer)
        assert r.status_code == 200, r.text
        assert r.json() == {
            "user_id": user_id,
            "orders": [{"id": "o-1001", "item": "龙井茶 250g", "total_fen": 16800}],
        }
        assert error_code(http.get("/orders", headers={"Authorization": "Bearer nope"}), 401) == (
            "not_authenticated"
        )
        assert http.post("/v1/auth/logout", headers=bearer).status_code == 204
        assert error_code(http.get("/orders", headers=bearer), 401) == "session_revoked"
        # a cookie write from another origin to the shop's own route is refused
        r = http.post("/orders", headers={"Origin": "https://evil.example"})
        assert error_code(r, 403) == "csrf_failed"
