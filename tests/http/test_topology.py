"""The production topology of docs/deploy.md, end to end on loopback (issue 11 item 5): nginx with
the shipped deploy/nginx/huihua.conf terminating TLS (a self-signed certificate made here), round-
robin to two `huihua serve` processes on Redis (accounts on PostgreSQL, one secret key), each with
HUIHUA_TRUST_PROXY naming nginx (127.0.0.2, its own loopback address: see nginxkit). A headless Chromium uses the account page over HTTPS;
the mini-program SDK under Node logs in through the same proxy."""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from nginxkit import PROXY_ADDRESS, Nginx
from servicekit import (
    PASSWORD,
    ServeProcess,
    free_port,
    huihua_command,
    serve_env,
    wait_for_port,
)

from huihua.wechat.emulator.state import DEFAULT_APPID as EMULATOR_APPID
from huihua.wechat.emulator.state import DEFAULT_SECRET as EMULATOR_SECRET

pytestmark = pytest.mark.slow

REDIS_URL = os.environ.get("HUIHUA_TEST_REDIS", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get("HUIHUA_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/huihua_test")
SECRET_KEY = "topology-secret-key-0123456789abcdefghij"  # one key for both processes
HERE = Path(__file__).resolve().parent
SDK = HERE.parents[1] / "clients" / "miniprogram"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
SCREENSHOTS = Path("/tmp")


@dataclass
class Topology:
    nginx: Nginx
    servers: list[ServeProcess]
    emulator_url: str

    @property
    def url(self) -> str:
        return self.nginx.url

    def client(self, **kw: Any) -> httpx.Client:
        """An HTTPS client of nginx that trusts the test's certificate (verification stays on)."""
        return httpx.Client(
            base_url=self.url, verify=ssl.create_default_context(cafile=self.nginx.cert), **kw
        )


def clean_stores() -> None:
    import psycopg
    import redis

    r = redis.Redis.from_url(REDIS_URL)
    r.flushdb()
    r.close()
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(
            "DROP TABLE IF EXISTS huihua_session, huihua_kv, huihua_user, huihua_wechat_identity CASCADE"
        )


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    folder = tmp_path_factory.mktemp("topology")
    clean_stores()
    emulator_port = free_port()
    emulator_log = (folder / "emulator.log").open("ab")
    emulator = subprocess.Popen([*huihua_command(), "emulator", "--port", str(emulator_port)],
                                env=serve_env(folder), cwd=folder, stdout=emulator_log, stderr=subprocess.STDOUT)  # fmt: skip
    servers: list[ServeProcess] = []
    nginx: Nginx | None = None
    try:
        wait_for_port(emulator_port, emulator)
        env = serve_env(
            folder, HUIHUA_STORE=REDIS_URL, HUIHUA_DATABASE=POSTGRES_URL, HUIHUA_SECRET_KEY=SECRET_KEY,
            HUIHUA_TRUST_PROXY=PROXY_ADDRESS, HUIHUA_WECHAT_APPID=EMULATOR_APPID,
            HUIHUA_WECHAT_SECRET=EMULATOR_SECRET, HUIHUA_WECHAT_API_BASE=f"http://127.0.0.1:{emulator_port}",
        )  # fmt: skip
        for _ in range(2):  # one after the other: the first creates the PostgreSQL tables
            servers.append(ServeProcess(env, cwd=folder, log_level="info").start())
        nginx = Nginx(folder / "nginx", [s.port for s in servers]).start()
        yield Topology(nginx, servers, f"http://127.0.0.1:{emulator_port}")
    finally:
        if nginx is not None:
            nginx.stop()
        for s in servers:
            s.stop()
        emulator.terminate()
        emulator.wait(10)
        emulator_log.close()
        clean_stores()


def login(topology: Topology, username: str, headers: dict[str, str] | None = None) -> str:
    with topology.client() as c:
        c.post("/v1/accounts", json={"username": username, "password": PASSWORD})
        r = c.post("/v1/auth/login", json={"username": username, "password": PASSWORD},
                   headers={"X-Session-Transport": "header", **(headers or {})})  # fmt: skip
        assert r.status_code == 200, r.text
        return str(r.json()["token"])


def my_session(topology: Topology, token: str) -> dict[str, Any]:
    with topology.client() as c:
        r = c.get("/v1/sessions", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        [mine] = [s for s in r.json()["sessions"] if s["current"]]
        return dict(mine)


def requests_served(server: ServeProcess, route: str) -> float:
    """This process's own count of answered requests for a route (its /metrics, read directly)."""
    text = httpx.get(server.url + "/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("huihua_http_requests_total{") and f'route="{route}"' in line)  # fmt: skip


# -- the browser ---------------------------------------------------------------------------------
@pytest.fixture
def browser() -> Iterator[Any]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-browser")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def test_browser_signs_up_over_https_gets_host_secure_cookie_sees_sessions_logs_out(
    topology: Topology, browser: Any
) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(ignore_https_errors=True)  # the self-signed certificate
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(topology.url + "/")
    assert page.url.startswith("https://")
    signup = page.locator("#signup-form")
    signup.locator("input[name=username]").fill("tls-browser")
    signup.locator("input[name=password]").fill(PASSWORD)
    signup.locator("button").click()
    expect(page.locator("#who")).to_have_text("tls-browser")
    expect(page.locator("#sessions tr")).to_have_count(1)

    [cookie] = [c for c in context.cookies() if c["name"] == "__Host-sid"]
    assert cookie["secure"] and cookie["httpOnly"] and cookie["path"] == "/" and cookie["sameSite"] == "Lax"
    assert "domain" not in cookie or cookie["domain"] == "127.0.0.1"  # __Host-: bound to this host
    assert not [c for c in context.cookies() if c["name"] == "sid"]
    # the address huihua recorded is the browser's, as nginx saw it
    expect(page.locator("#sessions")).to_contain_text("127.0.0.1")

    # a phone logs in through nginx too, claiming another address: it shows up, with the real one
    phone = login(topology, "tls-browser", {"X-Forwarded-For": "6.6.6.6", "User-Agent": "WeChat MiniProgram"})
    page.reload()
    expect(page.locator("#sessions tr")).to_have_count(2)
    expect(page.locator("#sessions")).to_contain_text("miniprogram")
    expect(page.locator("#sessions")).not_to_contain_text("6.6.6.6")
    page.screenshot(path=str(SCREENSHOTS / "huihua-topology-account-page.png"), full_page=True)

    page.locator("#logout").click()
    expect(page.locator("#signed-out")).to_be_visible()
    assert not [c for c in context.cookies() if c["name"] == "__Host-sid"]
    page.screenshot(path=str(SCREENSHOTS / "huihua-topology-logged-out.png"), full_page=True)
    page.reload()  # nothing left that logs the browser back in
    expect(page.locator("#signed-out")).to_be_visible()
    context.close()

    # tokens are never in a URL, so never in nginx's access log nor in huihua's logs
    logs = (topology.nginx.folder / "access.log").read_text() + "".join(s.log() for s in topology.servers)
    assert phone not in logs
    assert "/v1/auth/login" in logs  # the access log is the one we think it is


# -- forwarded headers through nginx -------------------------------------------------------------
def test_client_ip_is_the_peer_nginx_saw_never_a_forged_forwarded_for(topology: Topology) -> None:
    token = login(topology, "ip-check", {"X-Forwarded-For": "6.6.6.6"})
    assert my_session(topology, token)["ip"] == "127.0.0.1"
    token = login(topology, "ip-check", {"X-Forwarded-For": "6.6.6.6, 203.0.113.9", "X-Real-IP": "6.6.6.6"})
    assert my_session(topology, token)["ip"] == "127.0.0.1"


def test_https_through_nginx_means_host_secure_cookie_whatever_the_client_claims(topology: Topology) -> None:
    with topology.client() as c:
        c.post("/v1/accounts", json={"username": "proto", "password": PASSWORD})
        r = c.post("/v1/auth/login", json={"username": "proto", "password": PASSWORD},
                   headers={"X-Forwarded-Proto": "http", "Origin": topology.url})  # fmt: skip
        assert r.status_code == 200, r.text
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("__Host-sid=") and "Secure" in cookie and "HttpOnly" in cookie
        # the cookie carries the browser session through nginx (to either process)
        for _ in range(4):
            assert c.get("/v1/auth/me").json()["user"]["username"] == "proto"


def test_tls_with_http2_and_hsts(topology: Topology) -> None:
    """What a real client negotiates with the shipped config (curl speaks HTTP/2; httpx here does not)."""
    run = subprocess.run(["curl", "-sS", "--http2", "--cacert", str(topology.nginx.cert), "-D", "-", "-o", "/dev/null",
                          "-w", "%{http_version}", topology.url + "/healthz"],
                         check=False, capture_output=True, text=True, timeout=30)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.endswith("\n2"), run.stdout  # HTTP/2 over TLS
    assert "strict-transport-security: max-age=63072000" in run.stdout.lower()


def test_plain_http_only_redirects_to_https(topology: Topology) -> None:
    r = httpx.get(f"http://127.0.0.1:{topology.nginx.http_port}/v1/auth/me?x=1", follow_redirects=False)
    assert r.status_code == 308
    assert r.headers["location"] == "https://127.0.0.1/v1/auth/me?x=1"  # $host: the default port 443
    assert "set-cookie" not in r.headers


def test_requests_are_spread_over_both_processes_and_a_session_works_on_either(topology: Topology) -> None:
    token = login(topology, "round-robin")
    before = [requests_served(s, "/v1/auth/me") for s in topology.servers]
    with topology.client() as c:
        for _ in range(10):
            r = c.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200 and r.json()["user"]["username"] == "round-robin"
    served = [requests_served(s, "/v1/auth/me") - b for s, b in zip(topology.servers, before, strict=True)]
    assert sum(served) == 10
    assert min(served) >= 3, served  # round-robin: both answered


def test_metrics_are_not_public_and_body_limits_answer_json(topology: Topology) -> None:
    with topology.client() as c:
        r = c.get("/metrics")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        huge = c.post(
            "/v1/accounts", content=b"x" * (600 * 1024), headers={"Content-Type": "application/json"}
        )
        assert huge.status_code == 413 and huge.json()["error"]["code"] == "payload_too_large"  # nginx's
        big = c.post(
            "/v1/accounts", content=b"x" * (300 * 1024), headers={"Content-Type": "application/json"}
        )
        assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"  # huihua's
        assert "request bodies are at most" in big.json()["error"]["message"]


# -- the mini-program SDK under Node ---------------------------------------------------------------
@pytest.fixture(scope="module")
def sdk_built() -> Path:
    """clients/miniprogram/dist, built from the current source (npm ci first when needed)."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.fail("node and npm are needed for the mini-program SDK (apt-get install nodejs npm)")
    if not (SDK / "node_modules" / "typescript").exists():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=SDK, check=True)
    subprocess.run([npm, "run", "--silent", "build"], cwd=SDK, check=True)
    return SDK / "dist"


def test_miniprogram_sdk_logs_in_through_nginx_over_https(topology: Topology, sdk_built: Path) -> None:
    env = {**os.environ, "BASE_URL": topology.url, "EMULATOR_URL": topology.emulator_url,
           "CA_FILE": str(topology.nginx.cert)}  # fmt: skip
    env.pop("NODE_TLS_REJECT_UNAUTHORIZED", None)  # verification on: the SDK trusts only our certificate
    run = subprocess.run(["node", str(HERE / "miniprogram_login.js")], env=env, check=False, capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["login"]["user"]["id"].startswith("u_") and out["login"]["bound"] is False
    assert out["me"]["status"] == 200 and out["me"]["data"]["user"]["id"] == out["login"]["user"]["id"]
    assert out["sessions"]["status"] == 200
    [mine] = [s for s in out["sessions"]["data"]["sessions"] if s["current"]]
    assert mine["ip"] == "127.0.0.1"  # not the 6.6.6.6 the client wrote in X-Forwarded-For
    assert mine["client"] == "miniprogram"
    assert out["put"] == 200 and out["data"] == {"data": {"from": "node"}}
    assert out["tokenStored"]
    assert out["urls"] and all(u.startswith(topology.url + "/v1/") for u in out["urls"])


# -- processes going away (last: it stops and restarts them) ---------------------------------------
def test_one_process_down_the_other_serves_both_down_json_503_then_back(topology: Topology) -> None:
    token = login(topology, "failover")
    bearer = {"Authorization": f"Bearer {token}"}
    first, second = topology.servers
    first.stop()
    try:
        with topology.client() as c:
            for _ in range(6):  # nginx retries the connection failure on the live process
                r = c.get("/v1/auth/me", headers=bearer)
                assert r.status_code == 200, r.text
            second.stop()
            r = c.get("/v1/auth/me", headers=bearer)
            assert r.status_code == 503
            assert r.json()["error"]["code"] == "service_unavailable"
            assert r.headers["retry-after"] == "5"
    finally:
        for s in (first, second):
            s.start()  # the same ports: nginx needs no reload
    with topology.client() as c:  # the session lives in Redis: nothing was lost with the processes
        for _ in range(4):
            r = c.get("/v1/auth/me", headers=bearer)
            assert r.status_code == 200 and r.json()["user"]["username"] == "failover"


def test_nginx_logged_no_errors_of_its_own(topology: Topology) -> None:
    # run last: the failover test's refused connections and the oversized body are expected
    expected = ("Connection refused", "no live upstreams", "client intended to send too large body")
    unexpected = [line for line in topology.nginx.error_log().splitlines()
                  if re.search(r"\[(error|crit|alert|emerg)\]", line) and not any(e in line for e in expected)]  # fmt: skip
    assert not unexpected, unexpected
