"""`huihua serve` as an operator starts it: what it exposes, the files it creates, what it logs
(issue 9 item 8 and the Low bullets)."""

from __future__ import annotations

import json
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from servicekit import (
    PASSWORD,
    SERVICE_KEY,
    ServeProcess,
    free_port,
    huihua_command,
    serve_env,
    wait_for_port,
)

Serve = Callable[..., ServeProcess]


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on TCP `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(_address(address, width))
    return found


def _address(hex_address: str, width: int) -> str:
    import ipaddress

    raw = bytes.fromhex(hex_address)
    if width == 8:
        return str(ipaddress.IPv4Address(raw[::-1]))
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))  # four little-endian words
    return str(ipaddress.IPv6Address(words))


# -- item 8: the emulator started by serve is on loopback whatever --host is ----------------------
def test_serve_emulator_listens_on_loopback_only(serve: Serve) -> None:
    emulator_port = free_port()
    server = serve(args=("--host", "0.0.0.0", "--emulator", "--emulator-port", str(emulator_port)))
    wait_for_port(emulator_port, server.proc)
    assert listening_addresses(server.port) == {"0.0.0.0"}  # --host applies to the service
    assert listening_addresses(emulator_port) == {"127.0.0.1"}
    assert f"WeChat emulator on http://127.0.0.1:{emulator_port}" in server.log()
    # the service uses it there
    r = httpx.post(f"http://127.0.0.1:{emulator_port}/_emulator/login", json={"openid": "o_test"})
    assert r.status_code == 200, r.text
    code = r.json()["code"]
    r = httpx.post(f"{server.url}/v1/auth/wechat", json={"code": code},
                   headers={"X-Session-Transport": "header"})  # fmt: skip
    assert r.status_code == 200, r.text


# -- JSON bodies: malformed or deeper than 32 levels is a 400 on every route ------------------------
def nested(levels: int) -> str:
    """A JSON body for PATCH /v1/session/data nesting `levels` levels in all."""
    assert levels >= 3
    inner = "[" * (levels - 2) + "1" + "]" * (levels - 2)
    return '{"set": {"deep": ' + inner + "}}"


def test_json_nesting_is_capped_at_32_levels(serve: Serve) -> None:
    server = serve()
    with httpx.Client(base_url=server.url, headers={"X-Session-Transport": "header",
                                                    "Content-Type": "application/json"}) as c:  # fmt: skip
        r = c.patch("/v1/session/data", content=nested(32))
        assert r.status_code == 200, r.text
        token = r.json()["token"]
        r = c.patch("/v1/session/data", content=nested(33), headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "json_too_deep"
        for path in (
            "/v1/auth/login",
            "/v1/accounts",
            "/v1/session/data",
            "/v1/introspect",
            "/v1/auth/logout",
        ):
            for body in ("[" * 10_000 + "]" * 10_000, '{"a":' * 10_000 + "1" + "}" * 10_000):
                r = c.request("PATCH" if path == "/v1/session/data" else "POST", path, content=body)
                assert r.status_code == 400, (path, r.text)
                assert r.json()["error"]["code"] == "json_too_deep"
                assert "32" in r.json()["error"]["message"]
        # the stored data is still the 32-level one
        r = c.get("/v1/session/data", headers={"Authorization": f"Bearer {token}"})
        assert r.json()["data"]["deep"] == json.loads(nested(32))["set"]["deep"]
    assert "Traceback" not in server.log()


def test_malformed_json_is_a_400(serve: Serve) -> None:
    server = serve()
    for body in (b"{bad", b'{"username": "a",}', b"\xff\xfe{", b'{"a": 1} trailing'):
        for path in ("/v1/auth/login", "/v1/accounts", "/v1/session/data"):
            r = httpx.request("PATCH" if path == "/v1/session/data" else "POST", f"{server.url}{path}", content=body,
                              headers={"Content-Type": "application/json", "X-Session-Transport": "header"})  # fmt: skip
            assert r.status_code == 400, (path, body, r.text)
            assert r.json()["error"]["code"] == "invalid_json"
            assert r.json()["error"]["message"].startswith("the request body is not valid JSON")


# -- secret and database files are 0600; short secrets are refused --------------------------------
def test_secret_and_sqlite_files_are_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    env = serve_env(tmp_path, HUIHUA_DATABASE=f"sqlite:///{tmp_path}/accounts.db")
    port = free_port()
    proc = subprocess.Popen([*huihua_command(), "serve", "--port", str(port)], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, umask=0)  # fmt: skip
    try:
        wait_for_port(port, proc)
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"X-Session-Transport": "header"}
        ) as c:
            assert c.post("/v1/accounts", json={"username": "moe", "password": PASSWORD}).status_code == 201
            assert c.post("/v1/auth/login", json={"username": "moe", "password": PASSWORD}).status_code == 200
        names = ["huihua.secret", "huihua.db", "huihua.db-wal", "huihua.db-shm",
                 "accounts.db", "accounts.db-wal", "accounts.db-shm"]  # fmt: skip
        modes = {name: oct(stat.S_IMODE((tmp_path / name).stat().st_mode)) for name in names}
        assert modes == dict.fromkeys(names, "0o600")
        assert len((tmp_path / "huihua.secret").read_text().strip()) >= 32
    finally:
        proc.terminate()
        proc.wait(10)


def refused_start(tmp_path: Path, **env: str) -> str:
    """Start `huihua serve`; it must refuse: non-zero exit and one line, no traceback."""
    try:
        done = subprocess.run([*huihua_command(), "serve", "--port", "0"], env=serve_env(tmp_path, **env),
                              cwd=tmp_path, capture_output=True, text=True, timeout=20, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"huihua serve started with {env}")
    out = (done.stdout + done.stderr).strip()
    assert done.returncode != 0 and "Traceback" not in out
    assert len(out.splitlines()) == 1, out
    return out


@pytest.mark.parametrize(
    "key", ["short", "x" * 31, "k" * 40 + ",old-short-key"], ids=["short", "31", "rotation"]
)
def test_short_secret_key_is_refused(tmp_path: Path, key: str) -> None:
    out = refused_start(tmp_path, HUIHUA_SECRET_KEY=key)
    assert "HUIHUA_SECRET_KEY" in out and "at least 32" in out and "secrets.token_urlsafe(32)" in out
    assert key.rsplit(",", maxsplit=1)[-1] not in out  # the secret itself is never printed


@pytest.mark.parametrize("content", ["", "\n", "too-short-secret\n"], ids=["empty", "newline", "short"])
def test_empty_or_short_secret_file_is_refused(tmp_path: Path, content: str) -> None:
    (tmp_path / "huihua.secret").write_text(content)
    out = refused_start(tmp_path)
    assert "huihua.secret" in out and "at least 32" in out and "secrets.token_urlsafe(32)" in out
    assert "too-short-secret" not in out


def test_a_32_character_secret_key_is_enough(serve: Serve) -> None:
    server = serve(HUIHUA_SECRET_KEY="s" * 32)
    assert httpx.get(f"{server.url}/healthz").status_code == 200


# -- security events are logged by default, as text or JSON lines -----------------------------------
WRONG = "wrong horse battery"


def login_failed_login_logout(server: ServeProcess) -> tuple[str, str, str]:
    """Register, log in, fail a login, log out; the user id, session id and token."""
    with httpx.Client(base_url=server.url, headers={"X-Session-Transport": "header"}) as c:
        user = c.post("/v1/accounts", json={"username": "lou", "password": PASSWORD}).json()["user"]
        r = c.post("/v1/auth/login", json={"username": "lou", "password": PASSWORD})
        token, session_id = r.json()["token"], r.json()["session"]["id"]
        assert c.post("/v1/auth/login", json={"username": "lou", "password": WRONG}).status_code == 401
        r = c.post("/v1/auth/logout", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 204
    return user["id"], session_id, token


def wait_for_log(server: ServeProcess, needle: str) -> str:
    for _ in range(100):
        if needle in (text := server.log()):
            return text
        time.sleep(0.05)
    return server.log()


def test_serve_logs_security_events_as_text_by_default(serve: Serve) -> None:
    server = serve(log_level=None)  # no --log-level: what an operator gets without asking
    user_id, session_id, token = login_failed_login_logout(server)
    with httpx.Client(base_url=server.url, headers={"X-Session-Transport": "header"}) as c:
        r = c.post("/v1/auth/login", json={"username": "lou", "password": PASSWORD})
        other_token, other_id = r.json()["token"], r.json()["session"]["id"]
        r = c.post("/v1/auth/logout-all", headers={"Authorization": f"Bearer {other_token}"})
        assert r.status_code == 204
    log = wait_for_log(server, f"reason=revoke_all:{other_id}")
    assert server.proc is not None and "--log-level" not in server.proc.args
    events = [line for line in log.splitlines() if "huihua.events" in line]
    logins = [e for e in events if "session login " in e]
    assert [f"id={session_id}" in e for e in logins] == [True, False]
    assert f"id={other_id}" in logins[1] and all(f"user={user_id}" in e for e in logins)
    [failed] = [e for e in events if "session login_failed " in e]
    assert "reason=invalid_credentials" in failed
    [logout] = [e for e in events if "session logout " in e]
    assert f"id={session_id}" in logout and f"user={user_id}" in logout and "reason=logout" in logout
    [revoked] = [e for e in events if "session revoked " in e]
    assert f"user={user_id}" in revoked and f"reason=revoke_all:{other_id}" in revoked
    for secret in (token, other_token, PASSWORD, WRONG):
        assert secret not in log


def test_serve_logs_json_lines_with_log_format_json(serve: Serve) -> None:
    server = serve(log_level="info", HUIHUA_LOG_FORMAT="json")
    user_id, session_id, token = login_failed_login_logout(server)
    log = wait_for_log(server, '"event": "logout"')
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]  # every line is JSON
    assert any(e.get("message", "").startswith("huihua listening on") for e in lines)
    events = {e["event"]: e for e in lines if e.get("logger") == "huihua.events"}
    assert {"login", "login_failed", "logout"} <= events.keys()
    assert events["login"]["session_id"] == events["logout"]["session_id"] == session_id
    assert events["login"]["user_id"] == events["logout"]["user_id"] == user_id
    assert events["login_failed"]["reason"] == "invalid_credentials"
    assert events["logout"]["reason"] == "logout"
    assert all({"time", "level", "logger", "message"} <= e.keys() for e in lines)
    assert token not in log and PASSWORD not in log and WRONG not in log


def test_bad_log_format_is_refused(tmp_path: Path) -> None:
    out = refused_start(tmp_path, HUIHUA_LOG_FORMAT="xml")
    assert "HUIHUA_LOG_FORMAT" in out and "text or json" in out


# -- introspection answers are never cached ---------------------------------------------------------
def test_introspect_answers_are_no_store(serve: Serve) -> None:
    server = serve()
    with httpx.Client(base_url=server.url) as c:
        r = c.patch("/v1/session/data", json={"set": {"a": 1}}, headers={"X-Session-Transport": "header"})
        token = r.json()["token"]
        answers = [c.post("/v1/introspect", json={"token": t}, headers={"X-Service-Key": SERVICE_KEY})
                   for t in (token, "A" * 47, "garbage")]  # fmt: skip
        assert [a.json()["active"] for a in answers] == [True, False, False]
        answers.append(c.post("/v1/introspect", json={"token": token}, headers={"X-Service-Key": "wrong"}))
        assert answers[-1].status_code == 401
        for a in answers:
            assert a.headers["cache-control"] == "no-store", a.text
