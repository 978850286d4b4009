"""WeChat login against a real `huihua serve` and a real `huihua emulator` (two processes)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from realserve import RealWorld, start_emulator, start_serve

from huihua.wechat.emulator import DEFAULT_APPID, DEFAULT_SECRET

pytestmark = pytest.mark.slow
SERVICE_KEY = "wechat-serve-service-key"


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealWorld]:
    cwd: Path = tmp_path_factory.mktemp("wechat-serve")
    emulator = start_emulator(cwd)
    try:
        serve = start_serve(cwd, wechat_api_base=emulator.url, HUIHUA_SERVICE_KEY=SERVICE_KEY)
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


def _stats(real: RealWorld) -> dict[str, int]:
    answer = httpx.get(f"{real.serve.url}/v1/admin/stats", headers={"X-Service-Key": SERVICE_KEY})
    assert answer.status_code == 200, answer.text
    stats: dict[str, int] = answer.json()
    return stats


def _login(real: RealWorld, code: str, key: str | None, **body: Any) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    with real.client() as c:
        return c.post("/v1/auth/wechat", json={"code": code, **body}, headers=headers)


def _refused_without_token(answer: httpx.Response, code: str = "wechat_code_used") -> None:
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == code
    assert "token" not in answer.json()
    assert "x-session-token" not in answer.headers
    assert "set-cookie" not in answer.headers


def test_a_leaked_code_does_not_hand_out_the_victims_session(real: RealWorld) -> None:
    """Issue 9 item 2: the victim logs in with code + key; an attacker who read the code (a log,
    a proxy, the emulator's /calls) replays it within its 5 minutes, with no key or their own."""
    code, _ = real.code()
    victim_key = _key()
    victim = _login(real, code, victim_key)
    assert victim.status_code == 200, victim.text
    before = _stats(real)
    for attacker_key in (None, _key(), victim_key[:-1] + ("A" if victim_key[-1] != "A" else "B")):
        _refused_without_token(_login(real, code, attacker_key))
    assert _stats(real) == before  # no session, no user came of it
    with real.client(victim.json()["token"]) as c:
        assert c.get("/v1/auth/me").status_code == 200  # and the victim's session is untouched


def test_the_honest_retry_gets_the_same_session_and_wechat_sees_the_code_once(real: RealWorld) -> None:
    code, _ = real.code()
    key = _key()
    calls = len(real.calls("/sns/jscode2session"))
    first, retry = _login(real, code, key), _login(real, code, key)
    assert first.status_code == retry.status_code == 200, (first.text, retry.text)
    assert retry.json()["token"] == first.json()["token"]
    assert retry.headers["x-session-token"] == first.json()["token"]
    assert retry.json()["session"]["id"] == first.json()["session"]["id"]
    assert retry.json()["user"] == first.json()["user"]
    assert len(real.calls("/sns/jscode2session")) == calls + 1


def test_a_first_login_without_a_key_works_and_nobody_collects_its_retry(real: RealWorld) -> None:
    code, _ = real.code()
    first = _login(real, code, None)
    assert first.status_code == 200, first.text
    _refused_without_token(_login(real, code, None))
    _refused_without_token(_login(real, code, _key()))


def test_parallel_retries_with_one_key_make_one_session_and_one_wechat_call(real: RealWorld) -> None:
    code, _ = real.code()
    key = _key()
    calls, before = len(real.calls("/sns/jscode2session")), _stats(real)
    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(lambda _: _login(real, code, key), range(5)))
    assert [a.status_code for a in answers] == [200] * 5, [a.text for a in answers]
    assert len({a.json()["token"] for a in answers}) == 1
    assert len(real.calls("/sns/jscode2session")) == calls + 1
    after = _stats(real)
    assert after["active_sessions"] == before["active_sessions"] + 1
    assert after["users"] == before["users"] + 1


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("short", id="too-short"),
        pytest.param("k" * 129, id="too-long"),
        pytest.param("has spaces in it, sixteen+", id="space"),
        pytest.param('quote"' + "x" * 20, id="quote"),
        pytest.param("", id="empty"),
    ],
)
def test_a_malformed_idempotency_key_is_refused_before_the_exchange(real: RealWorld, key: str) -> None:
    code, _ = real.code()
    _refused_without_token(_login(real, code, key), "idempotency_key_invalid")
    assert _login(real, code, _key()).status_code == 200  # the code was not spent


@pytest.mark.parametrize(
    "open_data",
    [
        pytest.param({"raw_data": "[1]", "signature": "0" * 40}, id="raw-data-a-list"),
        pytest.param({"raw_data": "not json", "signature": "0" * 40}, id="raw-data-not-json"),
        pytest.param({"raw_data": "[" * 4000 + "]" * 4000, "signature": "0" * 40}, id="raw-data-deep"),
        pytest.param({"raw_data": '{"nickName": "x"}'}, id="unsigned"),
        pytest.param({"raw_data": '{"nickName": "x"}', "signature": "zz"}, id="signature-not-hex"),
        pytest.param({"signature": "0" * 40}, id="signature-alone"),
        pytest.param({"encrypted_data": "AAAA"}, id="no-iv"),
    ],
)
def test_bad_open_data_is_refused_before_any_session(real: RealWorld, open_data: dict[str, str]) -> None:
    code, _ = real.code()
    before = _stats(real)
    _refused_without_token(_login(real, code, _key(), **open_data), "wechat_data_invalid")
    assert _stats(real) == before
    assert _login(real, code, _key()).status_code == 200  # validated before the code was spent


def test_signed_raw_data_with_a_wrong_signature_is_refused_and_no_session(real: RealWorld) -> None:
    code, openid = real.code()
    payload = real.control.post("/_emulator/encrypted-data", json={"openid": openid, "data": {"a": 1}}).json()
    before = _stats(real)
    answer = _login(real, code, _key(), raw_data=payload["raw_data"], signature="0" * 40)
    _refused_without_token(answer, "wechat_data_invalid")
    assert _stats(real)["active_sessions"] == before["active_sessions"]


def test_wechat_routes_answer_503_when_wechat_is_not_configured(tmp_path: Path) -> None:
    serve = start_serve(tmp_path, wechat_api_base=None)
    try:
        with httpx.Client(base_url=serve.url, headers={"X-Session-Transport": "header"}) as c:
            for path, body in [("/v1/auth/wechat", {"code": "abc"}),
                               ("/v1/auth/wechat/bind", {"username": "ada", "password": "pw-pw-pw-pw"}),
                               ("/v1/auth/wechat/phone", {"code": "abc"})]:  # fmt: skip
                answer = c.post(path, json=body)
                assert answer.status_code == 503, (path, answer.text)
                error = answer.json()["error"]
                assert error["code"] == "wechat_not_configured"
                assert (
                    "HUIHUA_WECHAT_APPID" in error["message"] and "HUIHUA_WECHAT_SECRET" in error["message"]
                )
            spec = c.get("/openapi.json").json()
        for path in ("/v1/auth/wechat", "/v1/auth/wechat/bind", "/v1/auth/wechat/phone"):
            assert "503" in spec["paths"][path]["post"]["responses"], path
        params = spec["paths"]["/v1/auth/wechat"]["post"]["parameters"]
        assert [p["name"] for p in params if p["in"] == "header"] == ["Idempotency-Key"]
    finally:
        serve.stop()
