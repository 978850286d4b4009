"""The account page `/` in a real headless Chromium (Debian's, never a downloaded one):
sign up, see the sessions table, revoke another session, log out, see and remove a linked
WeChat sign-in."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from servicekit import PASSWORD, ServeProcess, free_port

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
SCREENSHOT = "/tmp/huihua-account-page.png"
DOCS_SCREENSHOT = "/tmp/huihua-docs-page.png"


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


def test_account_page_sign_up_sessions_revoke_log_out(
    serve: Callable[..., ServeProcess], browser: Any
) -> None:
    from playwright.sync_api import expect

    emulator = f"http://127.0.0.1:{free_port()}"
    server = serve(args=["--emulator", "--emulator-port", emulator.rsplit(":", 1)[1]])
    page = browser.new_page()
    page.set_default_timeout(20_000)
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    r = httpx.get(server.url + "/")
    assert "'unsafe-inline'" not in r.headers["content-security-policy"].split("script-src")[1].split(";")[0]
    assert "<script>" not in r.text  # the script is /account.js: the CSP allows no inline script
    page.goto(server.url + "/")
    expect(page.locator("#signed-out")).to_be_visible()
    expect(page.locator("#signed-in")).to_be_hidden()

    signup = page.locator("#signup-form")
    signup.locator("input[name=username]").fill("playwright")
    signup.locator("input[name=password]").fill(PASSWORD)
    signup.locator("button").click()
    expect(page.locator("#who")).to_have_text("playwright")
    expect(page.locator("#sessions tr")).to_have_count(1)
    expect(page.locator("#sessions tr.current, #sessions td.current")).to_have_count(1)
    expect(page.locator("#sessions")).to_contain_text("browser (this one)")

    # the cookie is HttpOnly: the page's script cannot read it
    assert "sid=" not in page.evaluate("document.cookie")
    [cookie] = [c for c in page.context.cookies() if c["name"] == "sid"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/"

    # a second session, from a phone: it shows up, and can be revoked from the page
    r = httpx.post(server.url + "/v1/auth/login", json={"username": "playwright", "password": PASSWORD},
                   headers={"X-Session-Transport": "header", "User-Agent": "WeChat MiniProgram"})  # fmt: skip
    phone = r.json()["token"]
    page.reload()
    expect(page.locator("#sessions tr")).to_have_count(2)
    expect(page.locator("#sessions")).to_contain_text("miniprogram")
    page.screenshot(path=SCREENSHOT, full_page=True)
    page.locator("button.revoke").click()
    expect(page.locator("#sessions tr")).to_have_count(1)
    assert (
        httpx.get(server.url + "/v1/auth/me", headers={"Authorization": f"Bearer {phone}"}).status_code == 401
    )

    page.locator("#logout").click()
    expect(page.locator("#signed-out")).to_be_visible()
    expect(page.locator("#signed-in")).to_be_hidden()
    assert not [c for c in page.context.cookies() if c["name"] == "sid"]

    # and log in again with the login form; a wrong password shows the error
    login = page.locator("#login-form")
    login.locator("input[name=username]").fill("playwright")
    login.locator("input[name=password]").fill("not the password")
    login.locator("button").click()
    expect(page.locator("#message")).to_have_text("the username or password is wrong")
    login.locator("input[name=password]").fill(PASSWORD)
    login.locator("button").click()
    expect(page.locator("#who")).to_have_text("playwright")
    expect(page.locator("#no-identities")).to_be_visible()
    expect(page.locator("#identities tr")).to_have_count(0)

    # a WeChat user binds to this account (with the password): the page lists it
    code = httpx.post(emulator + "/_emulator/login", json={}).json()
    wx = httpx.post(
        server.url + "/v1/auth/wechat", json={"code": code["code"]}, headers={"X-Session-Transport": "header"}
    )
    r = httpx.post(server.url + "/v1/auth/wechat/bind", json={"username": "playwright", "password": PASSWORD},
                   headers={"Authorization": f"Bearer {wx.json()['token']}"})  # fmt: skip
    assert r.status_code == 200, r.text
    wechat = r.json()["token"]
    page.reload()
    expect(page.locator("#identities tr")).to_have_count(1)
    expect(page.locator("#identities")).to_contain_text("WeChat")
    expect(page.locator("#identities")).to_contain_text("wx1234567890abcdef")
    assert code["openid"] not in page.content()
    expect(page.locator("#sessions tr")).to_have_count(2)

    # removing it asks for the password; a wrong one shows the error and removes nothing
    page.locator("button.unlink").click()
    unlink = page.locator("#unlink-form")
    expect(unlink).to_be_visible()
    unlink.locator("input[name=password]").fill("not the password")
    unlink.locator("#unlink-confirm").click()
    expect(page.locator("#message")).to_have_text("the password is wrong")
    expect(page.locator("#identities tr")).to_have_count(1)
    unlink.locator("input[name=password]").fill(PASSWORD)
    unlink.locator("#unlink-confirm").click()
    expect(page.locator("#identities tr")).to_have_count(0)
    expect(page.locator("#no-identities")).to_be_visible()
    expect(unlink).to_be_hidden()
    expect(page.locator("#sessions tr")).to_have_count(1)  # the WeChat session ended with it
    assert (
        httpx.get(server.url + "/v1/auth/me", headers={"Authorization": f"Bearer {wechat}"}).status_code
        == 401
    )
    page.screenshot(path=SCREENSHOT, full_page=True)
    assert not [m for m in console if "Content Security Policy" in m], console
    page.close()


@pytest.fixture
def other_origin() -> Iterator[Callable[[], str]]:
    """`other_origin()`: the origin of a new blank page on another loopback port (same site,
    another origin), for pages whose scripts call huihua cross-origin."""
    servers: list[ThreadingHTTPServer] = []

    class Blank(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<!doctype html><title>another origin</title><p>front end</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    def start() -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), Blank)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# runs in a page of another origin: the answers it could read, or "blocked" where CORS stopped it
CROSS_ORIGIN_CALLS = """async ([api, username, password]) => {
  const call = async (path, init) => {
    try {
      const r = await fetch(api + path, init);
      const body = r.status === 204 ? null : await r.json();
      return {status: r.status, token: r.headers.get("X-Session-Token"), body};
    } catch (e) {
      return "blocked";
    }
  };
  const json = {"Content-Type": "application/json"};
  const login = JSON.stringify({username, password});
  const out = {};
  out.cookieLogin = await call("/v1/auth/login",
    {method: "POST", credentials: "include", headers: json, body: login});
  out.cookieMe = await call("/v1/auth/me", {credentials: "include"});
  out.headerLogin = await call("/v1/auth/login",
    {method: "POST", headers: {...json, "X-Session-Transport": "header"}, body: login});
  const token = out.headerLogin === "blocked" ? "none" : out.headerLogin.token;
  out.headerMe = await call("/v1/auth/me", {headers: {Authorization: "Bearer " + token}});
  out.headerWithCredentials = await call("/v1/auth/me",
    {credentials: "include", headers: {Authorization: "Bearer " + token}});
  return out;
}"""


def test_cors_from_a_page_on_another_origin(
    serve: Callable[..., ServeProcess], browser: Any, other_origin: Callable[[], str]
) -> None:
    listed, unlisted = other_origin(), other_origin()
    server = serve(HUIHUA_CORS_ORIGINS=f"https://app.example.com,{listed}")
    r = httpx.post(server.url + "/v1/accounts", json={"username": "corsy", "password": PASSWORD})
    assert r.status_code == 201, r.text
    page = browser.new_page()
    page.set_default_timeout(20_000)

    page.goto(listed + "/")
    out = page.evaluate(CROSS_ORIGIN_CALLS, [server.url, "corsy", PASSWORD])
    # a cookie client: logged in with the cookie (same site, so SameSite=Lax sends it), reads /me
    assert out["cookieLogin"]["status"] == 200 and "token" not in out["cookieLogin"]["body"]
    assert out["cookieMe"]["status"] == 200
    assert out["cookieMe"]["body"]["user"]["username"] == "corsy"
    assert out["cookieMe"]["body"]["session"]["client"] == "browser"
    [cookie] = [c for c in page.context.cookies() if c["name"] == "sid"]
    assert cookie["httpOnly"]
    # a header client reads the exposed X-Session-Token and uses it as a bearer
    assert out["headerLogin"]["status"] == 200
    assert out["headerLogin"]["token"] == out["headerLogin"]["body"]["token"]
    assert out["headerMe"]["status"] == 200 and out["headerMe"]["body"]["session"]["client"] != "browser"
    # credentials are for cookie clients only
    assert out["headerWithCredentials"] == "blocked"

    page.context.clear_cookies()
    page.goto(unlisted + "/")
    out = page.evaluate(CROSS_ORIGIN_CALLS, [server.url, "corsy", PASSWORD])
    assert out == dict.fromkeys(out, "blocked") and len(out) == 5, out
    assert not [c for c in page.context.cookies() if c["name"] == "sid"]
    page.close()


def test_docs_and_redoc_render_offline(serve: Callable[..., ServeProcess], browser: Any) -> None:
    """Every request to anything but the server is refused, as offline or behind a firewall: the
    pages still render, from files huihua serves, under a CSP with no inline script."""
    from playwright.sync_api import expect

    server = serve()
    page = browser.new_page()
    page.set_default_timeout(20_000)
    elsewhere: list[str] = []
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)

    def only_the_server(route: Any) -> None:
        if route.request.url.startswith(server.url + "/"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort("internetdisconnected")

    page.route("**/*", only_the_server)
    r = httpx.get(server.url + "/docs")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe" not in csp.split("script-src")[1].split(";")[0]
    assert "<script>" not in r.text and "cdn" not in r.text.lower()

    page.goto(server.url + "/docs")
    expect(page.locator(".opblock-summary-path", has_text="/v1/auth/login").first).to_be_visible()
    expect(page.locator(".opblock")).not_to_have_count(0)
    page.screenshot(path=DOCS_SCREENSHOT, full_page=False)
    assert not console, console  # no CSP violation, no file missing

    page.goto(server.url + "/redoc")
    expect(page.get_by_text("/v1/auth/login").first).to_be_attached()
    expect(page.locator("h1").first).to_contain_text("huihua")
    assert not elsewhere, elsewhere
    # ReDoc's sidebar shows Redocly's logo from their CDN: the CSP refuses it before any request
    # leaves (ReDoc then drops the image); nothing else may be refused
    logo = "https://cdn.redoc.ly/redoc/logo-mini.svg"
    assert not [m for m in console if logo not in m], console
    page.close()
