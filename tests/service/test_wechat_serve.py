"""WeChat login against a real `huihua serve` and a real `huihua emulator` (two processes)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from huihua.wechat.emulator import DEFAULT_APPID, DEFAULT_SECRET

from .realserve import RealWorld, start_emulator, start_serve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealWorld]:
    cwd: Path = tmp_path_factory.mktemp("wechat-serve")
    emulator = start_emulator(cwd)
    try:
        serve = start_serve(cwd, wechat_api_base=emulator.url)
    except Exception:
        emulator.stop()
        raise
    world = RealWorld(serve, emulator)
    yield world
    world.close()


def _key() -> str:
    return secrets.token_urlsafe(24)


def _session_key_of(real: RealWorld, openid: str) -> str:
    """What WeChat holds for this user now: ask it as any server with the appsecret would."""
    code, _ = real.code(openid)
    params = {"appid": DEFAULT_APPID, "secret": DEFAULT_SECRET, "js_code": code,
              "grant_type": "authorization_code"}  # fmt: skip
    key: str = real.control.get("/sns/jscode2session", params=params).json()["session_key"]
    return key


def test_no_secret_reaches_any_log_line_at_debug(real: RealWorld) -> None:
    """C14: code, appsecret, session_key, access token and session tokens are in no log line, at
    DEBUG on every logger (httpx logs request URLs, and code2Session's query holds two secrets)."""
    with real.client() as c:
        assert (
            c.post("/v1/accounts", json={"username": "logcheck", "password": "correct horse"}).status_code
            == 201
        )
    code, openid = real.code()
    key = _key()
    with real.client() as c:
        first = c.post("/v1/auth/wechat", json={"code": code}, headers={"Idempotency-Key": key})
        again = c.post("/v1/auth/wechat", json={"code": code}, headers={"Idempotency-Key": key})
    assert first.status_code == 200, first.text
    assert again.status_code == 200, again.text
    token = first.json()["token"]
    phone = real.control.post("/_emulator/phone-code", json={"openid": openid}).json()["code"]
    with real.client(token) as c:
        assert c.post("/v1/auth/wechat/phone", json={"code": phone}).status_code == 200
        bound = c.post("/v1/auth/wechat/bind", json={"username": "logcheck", "password": "correct horse"})
    assert bound.status_code == 200, bound.text
    access_token = real.control.post(
        "/cgi-bin/stable_token",
        json={"grant_type": "client_credential", "appid": DEFAULT_APPID, "secret": DEFAULT_SECRET},
    ).json()["access_token"]
    session_key = _session_key_of(real, openid)
    log = real.serve.log()
    assert re.search(r"DEBUG httpcore\.", log), "httpcore did not log at DEBUG: the check proves nothing"
    assert "HTTP Request: GET http://127.0.0.1" in log and "/sns/jscode2session" in log
    values = {"js_code": code, "phone code": phone, "appsecret": DEFAULT_SECRET, "session_key": session_key,
              "access_token": access_token, "session token": token, "bound token": bound.json()["token"],
              "idempotency key": key}  # fmt: skip
    for name, value in values.items():
        assert value not in log, f"the {name} is in the service's log"
