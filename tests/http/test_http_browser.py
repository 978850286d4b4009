"""The account page `/` in a real headless Chromium (Debian's, never a downloaded one):
sign up, see the sessions table, revoke another session, log out, see and remove a linked
WeChat sign-in."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from servicekit import PASSWORD, ServeProcess, free_port

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
SCREENSHOT = "/tmp/huihua-account-page.png"


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
