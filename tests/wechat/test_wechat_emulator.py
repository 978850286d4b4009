"""The emulator, item by item against what docs/wechat.md#the-emulator says it reproduces.

Every call goes over HTTP (in-process), and checks the raw answer: status, body and headers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from huihua.core.clock import FakeClock
from huihua.wechat import StaleSessionKey
from huihua.wechat.crypto import (
    decrypt_data,
    login_signature,
    raw_signature,
    verify_raw_signature,
)
from huihua.wechat.emulator import DEFAULT_APPID as APPID
from huihua.wechat.emulator import DEFAULT_SECRET as SECRET
from huihua.wechat.emulator import Emulator, create_app, parse_apps
from huihua.wechat.emulator.transport import SyncASGITransport

EMU = "http://emulator.test"

Login = Callable[..., dict[str, str]]
RID = re.compile(r", rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$")


def code2session(control: httpx.Client, code: str, **override: str) -> dict[str, Any]:
    params = {"appid": APPID, "secret": SECRET, "js_code": code, "grant_type": "authorization_code"}
    params.update(override)
    response = control.get("/sns/jscode2session", params={k: v for k, v in params.items() if v})
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def errcode(body: dict[str, Any]) -> int:
    if body.get("errcode", 0):
        assert RID.search(body["errmsg"]), body  # every error carries WeChat's request id
    return int(body.get("errcode", 0))


def stable(control: httpx.Client, force: bool = False, **override: Any) -> dict[str, Any]:
    body = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    body |= {"force_refresh": force, **override}
    answer: dict[str, Any] = control.post("/cgi-bin/stable_token", json=body).json()
    return answer


def classic(control: httpx.Client) -> dict[str, Any]:
    params = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    answer: dict[str, Any] = control.get("/cgi-bin/token", params=params).json()
    return answer


def check(control: httpx.Client, token: str, openid: str, key: str, **override: str) -> int:
    params = {
        "access_token": token,
        "openid": openid,
        "signature": login_signature(key),
        "sig_method": "hmac_sha256",
    } | override
    return errcode(control.get("/wxa/checksession", params=params).json())


# -- /sns/jscode2session -------------------------------------------------------------------------
def test_success_has_session_key_openid_unionid_and_no_errcode(control: httpx.Client, login: Login) -> None:
    user = login()
    body = code2session(control, user["code"])
    assert set(body) == {"session_key", "openid", "unionid"}
    assert body["openid"] == user["openid"]
    assert len(body["session_key"]) == 24 and body["session_key"].endswith("==")


def test_no_unionid_when_the_app_has_no_open_platform(clock: FakeClock) -> None:
    with httpx.Client(transport=SyncASGITransport(create_app(clock=clock, unionid=False)), base_url=EMU) as c:
        code = c.post("/_emulator/login", json={}).json()["code"]
        assert "unionid" not in code2session(c, code)


def test_post_gives_41002_even_with_everything_in_the_body(control: httpx.Client, login: Login) -> None:
    code = login()["code"]
    form = {"appid": APPID, "secret": SECRET, "js_code": code, "grant_type": "authorization_code"}
    response = control.post("/sns/jscode2session", data=form)
    assert response.status_code == 200
    assert errcode(response.json()) == 41002
    response = control.post("/sns/jscode2session", params=form)  # in the query string too
    assert errcode(response.json()) == 41002
    assert "openid" in code2session(control, code)  # the code was not spent


@pytest.mark.parametrize(
    ("missing", "expected"),
    [
        pytest.param("appid", 41002, id="appid"),
        pytest.param("secret", 41004, id="secret"),
        pytest.param("js_code", 41008, id="js_code"),
    ],
)
def test_missing_parameters(control: httpx.Client, login: Login, missing: str, expected: int) -> None:
    assert errcode(code2session(control, login()["code"], **{missing: ""})) == expected


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        pytest.param({"secret": "wrong"}, 40125, id="bad-secret"),
        pytest.param({"appid": "wx0000000000000000"}, 40013, id="bad-appid"),
        pytest.param({"grant_type": "client_credential"}, 40002, id="bad-grant-type"),
    ],
)
def test_bad_credentials(
    control: httpx.Client, login: Login, override: dict[str, str], expected: int
) -> None:
    assert errcode(code2session(control, login()["code"], **override)) == expected


def test_forged_code_is_40029(control: httpx.Client) -> None:
    assert errcode(code2session(control, "0" * 32)) == 40029


def test_codes_live_300_seconds(control: httpx.Client, login: Login, clock: FakeClock) -> None:
    fresh, stale = login()["code"], login()["code"]
    clock.advance(300)
    assert errcode(code2session(control, fresh)) == 0
    clock.advance(1)
    assert errcode(code2session(control, stale)) == 40029


def test_a_code_of_another_appid_is_40029(clock: FakeClock) -> None:
    app = create_app({"wxother": "other-secret"}, clock=clock)
    with httpx.Client(transport=SyncASGITransport(app), base_url=EMU) as c:
        code = c.post("/_emulator/login", json={"appid": "wxother"}).json()["code"]
        assert errcode(code2session(c, code)) == 40029
        assert errcode(code2session(c, code, appid="wxother", secret="other-secret")) == 0


def test_codes_are_single_use(control: httpx.Client, login: Login) -> None:
    code = login()["code"]
    assert errcode(code2session(control, code)) == 0
    assert errcode(code2session(control, code)) == 40163


def test_every_login_gives_a_new_code_for_the_same_user(control: httpx.Client, login: Login) -> None:
    first = login()
    second = login(openid=first["openid"])
    assert second["code"] != first["code"]
    a, b = code2session(control, first["code"]), code2session(control, second["code"])
    assert a["openid"] == b["openid"] and a["session_key"] == b["session_key"]


def test_blocked_users_get_40226(control: httpx.Client, login: Login) -> None:
    user = login(blocked=True)
    assert errcode(code2session(control, user["code"])) == 40226
    code = login(openid=user["openid"], blocked=False)["code"]
    assert errcode(code2session(control, code)) == 0
    code = login(openid=user["openid"])["code"]
    assert control.post("/_emulator/block", json={"openid": user["openid"]}).json() == {"ok": True}
    assert errcode(code2session(control, code)) == 40226


def test_more_than_100_calls_per_user_per_minute_get_45011(
    control: httpx.Client, login: Login, clock: FakeClock
) -> None:
    openid = login()["openid"]
    codes = [login(openid=openid)["code"] for _ in range(102)]
    assert [errcode(code2session(control, c)) for c in codes[:100]] == [0] * 100
    assert errcode(code2session(control, codes[100])) == 45011
    assert errcode(code2session(control, login()["code"])) == 0  # per user, not per app
    clock.advance(60)
    assert errcode(code2session(control, codes[101])) == 0


def test_injected_faults(control: httpx.Client, login: Login, emu: Emulator) -> None:
    code = login()["code"]
    ok = control.post("/_emulator/faults", json={"path": "/sns/jscode2session", "errcode": -1, "times": 2})
    assert ok.json() == {"ok": True}
    first, second = code2session(control, code), code2session(control, code)
    assert errcode(first) == errcode(second) == -1
    assert first["errmsg"].startswith("system error, rid: ")
    assert errcode(code2session(control, code)) == 0  # the faults did not spend the code
    control.post("/_emulator/faults", json={"path": "sns/jscode2session", "status": 502})
    response = control.get("/sns/jscode2session", params={"js_code": "x"})
    assert response.status_code == 502
    assert [c["errcode"] for c in emu.calls] == [-1, -1, 0, -1]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="no-path"),
        pytest.param({"path": "/x", "times": 0}, id="times-0"),
        pytest.param({"path": "/x", "errcode": "-1"}, id="errcode-string"),
        pytest.param({"path": "/x", "latency_ms": -5}, id="negative-latency"),
        pytest.param({"path": "/x", "status": 42}, id="bad-status"),
    ],
)
def test_bad_fault_requests_are_400(control: httpx.Client, body: dict[str, Any]) -> None:
    response = control.post("/_emulator/faults", json=body)
    assert response.status_code == 400
    assert "error" in response.json()


def test_expires_in_toggle(control: httpx.Client, login: Login, clock: FakeClock) -> None:
    assert "expires_in" not in code2session(control, login()["code"])
    control.post("/_emulator/config", json={"legacy_expires_in": True})
    assert code2session(control, login()["code"])["expires_in"] == 7200
    with httpx.Client(
        transport=SyncASGITransport(create_app(clock=clock, legacy_expires_in=True)), base_url=EMU
    ) as c:
        assert "expires_in" in code2session(c, c.post("/_emulator/login").json()["code"])


def test_errors_are_http_200_with_a_rid_and_a_configurable_content_type(
    control: httpx.Client, login: Login
) -> None:
    response = control.get("/sns/jscode2session", params={"appid": APPID})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert RID.search(response.json()["errmsg"])
    control.post("/_emulator/config", json={"content_type": "text/plain"})
    response = control.get("/sns/jscode2session", params={"appid": APPID})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.json()["errcode"] == 41004


def test_an_extra_access_token_is_ignored(control: httpx.Client, login: Login) -> None:
    body = code2session(control, login()["code"], access_token="whatever-wechatpy-sends")
    assert errcode(body) == 0


def test_session_key_expiry_and_rotation_through_the_control_api(
    control: httpx.Client, login: Login, clock: FakeClock
) -> None:
    user = login()
    key = code2session(control, user["code"])["session_key"]
    control.post("/_emulator/session-key/rotate", json={"openid": user["openid"]})
    rotated = code2session(control, login(openid=user["openid"])["code"])["session_key"]
    assert rotated != key
    control.post("/_emulator/session-key/expire", json={"openid": user["openid"]})
    renewed = code2session(control, login(openid=user["openid"])["code"])["session_key"]
    assert renewed != rotated  # an expired key is replaced at the next login


# -- access tokens ---------------------------------------------------------------------------
def test_classic_token_rotation_with_a_5_minute_overlap(
    control: httpx.Client, login: Login, clock: FakeClock
) -> None:
    user = login()
    key = code2session(control, user["code"])["session_key"]
    first = classic(control)
    assert first["expires_in"] == 7200 and len(first["access_token"]) >= 128
    assert check(control, first["access_token"], user["openid"], key) == 0
    second = classic(control)
    assert second["access_token"] != first["access_token"]
    clock.advance(299)
    assert check(control, first["access_token"], user["openid"], key) == 0
    clock.advance(1)
    assert check(control, first["access_token"], user["openid"], key) == 40001
    assert check(control, second["access_token"], user["openid"], key) == 0
    clock.advance(7200 - 300)
    assert check(control, second["access_token"], user["openid"], key) == 42001


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({"grant_type": "authorization_code"}, 40002, id="grant-type"),
        pytest.param({"appid": ""}, 41002, id="no-appid"),
        pytest.param({"secret": ""}, 41004, id="no-secret"),
        pytest.param({"appid": "wxnope"}, 40013, id="bad-appid"),
        pytest.param({"secret": "nope"}, 40125, id="bad-secret"),
    ],
)
def test_classic_token_errors(control: httpx.Client, params: dict[str, str], expected: int) -> None:
    query = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET} | params
    assert errcode(control.get("/cgi-bin/token", params=query).json()) == expected


def test_stable_token_is_the_same_within_its_window(control: httpx.Client, clock: FakeClock) -> None:
    first = stable(control)
    clock.advance(100)
    again = stable(control)
    assert again["access_token"] == first["access_token"]
    assert again["expires_in"] == 7100
    clock.advance(7200 - 100 - 301)  # 301 s left: still the same
    assert stable(control)["access_token"] == first["access_token"]
    clock.advance(2)  # 299 s left: rotated 5 minutes early, the old one still works
    rotated = stable(control)
    assert rotated["access_token"] != first["access_token"] and rotated["expires_in"] == 7200


def test_stable_token_overlap_and_isolation_from_the_classic_token(
    control: httpx.Client, login: Login, clock: FakeClock
) -> None:
    user = login()
    key = code2session(control, user["code"])["session_key"]
    old = stable(control)["access_token"]
    classic(control)
    classic(control)  # classic fetches never retire the stable token
    clock.advance(7200 - 200)
    new = stable(control)["access_token"]
    assert new != old
    assert check(control, old, user["openid"], key) == 0  # overlap: until its own expiry
    clock.advance(200)
    assert check(control, old, user["openid"], key) == 42001
    assert check(control, new, user["openid"], key) == 0


def test_force_refresh_invalidates_at_once_and_is_rate_limited(
    control: httpx.Client, login: Login, clock: FakeClock
) -> None:
    user = login()
    key = code2session(control, user["code"])["session_key"]
    old = stable(control)["access_token"]
    forced = stable(control, force=True)["access_token"]
    assert forced != old
    assert check(control, old, user["openid"], key) == 40001
    clock.advance(29)
    assert stable(control, force=True)["access_token"] == forced  # within 30 s: no refresh
    tokens = {forced}
    for _ in range(19):
        clock.advance(30)
        tokens.add(stable(control, force=True)["access_token"])
    assert len(tokens) == 20  # twenty a day
    clock.advance(30)
    assert stable(control, force=True)["access_token"] in tokens  # the 21st: no refresh
    clock.set((clock.now() // 86400 + 1) * 86400 - 8 * 3600)  # midnight in Beijing
    assert stable(control, force=True)["access_token"] not in tokens


def test_stable_token_wants_a_json_post(control: httpx.Client) -> None:
    assert errcode(control.get("/cgi-bin/stable_token").json()) == 43002
    assert errcode(control.post("/cgi-bin/stable_token", content=b"appid=x").json()) == 47001
    assert errcode(stable(control, secret="nope")) == 40125
    assert errcode(stable(control, grant_type="x")) == 40002


# -- checksession, resetusersessionkey -------------------------------------------------------
def test_checksession_verifies_hmac_of_the_key_text(control: httpx.Client, login: Login) -> None:
    user = login()
    key = code2session(control, user["code"])["session_key"]
    token = stable(control)["access_token"]
    assert control.get(
        "/wxa/checksession",
        params={
            "access_token": token,
            "openid": user["openid"],
            "signature": login_signature(key),
            "sig_method": "hmac_sha256",
        },
    ).json() == {"errcode": 0, "errmsg": "ok"}
    assert check(control, token, user["openid"], "AAAAAAAAAAAAAAAAAAAAAA==") == 87009
    assert check(control, token, user["openid"], key, sig_method="md5") == 87008
    assert check(control, token, "o-nobody", key) == 40003
    assert check(control, "", user["openid"], key) == 41001
    assert check(control, "forged", user["openid"], key) == 40001


def test_reset_gives_a_new_key_and_keeps_the_old_expiry(
    control: httpx.Client, login: Login, clock: FakeClock
) -> None:
    user = login()
    key = code2session(control, user["code"])["session_key"]
    token = stable(control)["access_token"]
    clock.advance(3 * 86400 - 100)
    params = {
        "access_token": token,
        "openid": user["openid"],
        "signature": login_signature(key),
        "sig_method": "hmac_sha256",
    }
    stable(control)  # keep a valid token at hand
    token = stable(control)["access_token"]
    body = control.get("/wxa/resetusersessionkey", params=params | {"access_token": token}).json()
    assert errcode(body) == 0 and body["openid"] == user["openid"]
    new = body["session_key"]
    assert new != key
    assert check(control, token, user["openid"], key) == 87009  # the old key stopped working
    assert check(control, token, user["openid"], new) == 0
    clock.advance(100)  # the inherited expiry
    token = stable(control)["access_token"]
    assert check(control, token, user["openid"], new) == 87009


def test_an_expired_session_key_fails_checksession(control: httpx.Client, login: Login) -> None:
    user = login()
    key = code2session(control, user["code"])["session_key"]
    token = stable(control)["access_token"]
    control.post("/_emulator/session-key/expire", json={"openid": user["openid"]})
    assert check(control, token, user["openid"], key) == 87009


# -- phone numbers, paid unionid ---------------------------------------------------------------
def phone(control: httpx.Client, token: str, body: dict[str, Any]) -> dict[str, Any]:
    url = "/wxa/business/getuserphonenumber"
    answer: dict[str, Any] = control.post(url, params={"access_token": token}, json=body).json()
    return answer


def test_phone_codes_are_single_use_and_live_5_minutes(
    control: httpx.Client, login: Login, clock: FakeClock
) -> None:
    openid = login()["openid"]
    token = stable(control)["access_token"]
    code = control.post("/_emulator/phone-code", json={"openid": openid, "phone": "13912345678"}).json()[
        "code"
    ]
    body = phone(control, token, {"code": code})
    assert body["errcode"] == 0
    info = body["phone_info"]
    assert info["phoneNumber"] == info["purePhoneNumber"] == "13912345678"
    assert info["countryCode"] == 86
    assert info["watermark"]["appid"] == APPID
    assert errcode(phone(control, token, {"code": code})) == 40029
    stale = control.post("/_emulator/phone-code", json={"openid": openid}).json()["code"]
    clock.advance(301)
    token = stable(control)["access_token"]
    assert errcode(phone(control, token, {"code": stale})) == 40029
    login_code = login(openid=openid)["code"]
    assert errcode(phone(control, token, {"code": login_code})) == 40029  # not a wx.login code


def test_phone_code_checked_against_the_openid(control: httpx.Client, login: Login) -> None:
    openid, other = login()["openid"], login()["openid"]
    token = stable(control)["access_token"]
    code = control.post("/_emulator/phone-code", json={"openid": openid}).json()["code"]
    assert errcode(phone(control, token, {"code": code, "openid": other})) == 40029
    assert errcode(phone(control, token, {"code": code, "openid": openid})) == 0
    assert control.get("/wxa/business/getuserphonenumber").json()["errcode"] == 43002


def test_paid_unionid_within_5_minutes_of_payment(
    control: httpx.Client, login: Login, clock: FakeClock
) -> None:
    user = login(unionid="o-union-1")
    token = stable(control)["access_token"]
    trade = control.post("/_emulator/payment", json={"openid": user["openid"]}).json()
    query = {"access_token": token, "openid": user["openid"]}
    by_id = control.get("/wxa/getpaidunionid", params=query | {"transaction_id": trade["transaction_id"]})
    assert by_id.json() == {"unionid": "o-union-1", "errcode": 0, "errmsg": "ok"}
    by_trade = query | {"mch_id": trade["mch_id"], "out_trade_no": trade["out_trade_no"]}
    assert control.get("/wxa/getpaidunionid", params=by_trade).json()["unionid"] == "o-union-1"
    assert errcode(control.get("/wxa/getpaidunionid", params=query).json()) == 89300
    clock.advance(301)
    token = stable(control)["access_token"]
    late = control.get("/wxa/getpaidunionid", params=by_trade | {"access_token": token})
    assert errcode(late.json()) == 89300


# -- the control API -----------------------------------------------------------------------------
def test_encrypted_data_under_the_current_session_key(
    control: httpx.Client, login: Login, clock: FakeClock
) -> None:
    user = login()
    key = code2session(control, user["code"])["session_key"]
    data = {"nickName": "小明", "gender": 1}
    made = control.post("/_emulator/encrypted-data", json={"openid": user["openid"], "data": data})
    made_body = made.json()
    assert set(made_body) == {"encrypted_data", "iv", "raw_data", "signature"}
    plain = decrypt_data(
        key, made_body["encrypted_data"], made_body["iv"], appid=APPID, max_age=10, now=clock.now()
    )
    assert plain == data | {"watermark": {"timestamp": int(clock.now()), "appid": APPID}}
    verify_raw_signature(made_body["raw_data"], key, made_body["signature"])
    assert made_body["signature"] == raw_signature(made_body["raw_data"], key)
    control.post("/_emulator/session-key/rotate", json={"openid": user["openid"]})
    again = control.post("/_emulator/encrypted-data", json={"openid": user["openid"], "data": data})
    with pytest.raises(StaleSessionKey):
        decrypt_data(key, again.json()["encrypted_data"], again.json()["iv"], appid=APPID)


def test_calls_are_logged_with_secrets_masked(control: httpx.Client, login: Login, clock: FakeClock) -> None:
    code = login()["code"]
    code2session(control, code)
    token = stable(control)["access_token"]
    check(control, token, "o-x", "AAAAAAAAAAAAAAAAAAAAAA==")
    calls = control.get("/_emulator/calls").json()["calls"]
    assert [c["path"] for c in calls] == [
        "/sns/jscode2session",
        "/cgi-bin/stable_token",
        "/wxa/checksession",
    ]
    assert [c["errcode"] for c in calls] == [0, 0, 40003]
    assert calls[0]["params"]["js_code"] == code and calls[0]["at"] == clock.now()
    text = str(calls)
    assert SECRET not in text and token not in text
    assert calls[1]["params"]["secret"] == "***"
    assert calls[2]["params"]["access_token"] == token[:8] + "***"


def test_reset_forgets_users_codes_tokens_faults_and_calls(control: httpx.Client, login: Login) -> None:
    user = login()
    token = stable(control)["access_token"]
    control.post("/_emulator/faults", json={"path": "/cgi-bin/stable_token", "errcode": -1})
    control.post("/_emulator/config", json={"legacy_expires_in": True})
    assert control.post("/_emulator/reset").json() == {"ok": True}
    assert control.get("/_emulator/calls").json() == {"calls": []}
    assert errcode(code2session(control, user["code"])) == 40029
    assert check(control, token, user["openid"], "AAAAAAAAAAAAAAAAAAAAAA==") == 40001
    assert errcode(stable(control)) == 0
    assert "expires_in" not in code2session(control, login()["code"])


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        pytest.param("/_emulator/phone-code", {"openid": "o-nobody"}, 404, id="unknown-openid"),
        pytest.param("/_emulator/session-key/rotate", {}, 404, id="no-openid"),
        pytest.param("/_emulator/login", {"appid": "wxunknown"}, 400, id="unknown-appid"),
        pytest.param("/_emulator/login", {"blocked": "yes"}, 400, id="blocked-not-bool"),
        pytest.param("/_emulator/encrypted-data", {"openid": "o", "data": []}, 400, id="data-list"),
        pytest.param("/_emulator/config", {"rate_limit": 0}, 400, id="rate-limit-0"),
    ],
)
def test_bad_control_calls(control: httpx.Client, path: str, body: dict[str, Any], status: int) -> None:
    response = control.post(path, json=body)
    assert response.status_code == status
    assert response.json()["error"]


def test_control_calls_need_a_json_object(control: httpx.Client) -> None:
    assert control.post("/_emulator/login", content=b"[1]").status_code == 400
    assert control.post("/_emulator/login", content=b"{").status_code == 400


def test_login_with_a_chosen_openid_and_unionid(control: httpx.Client, login: Login) -> None:
    user = login(openid="o-chosen", unionid="u-chosen")
    assert user["openid"] == "o-chosen"
    body = code2session(control, user["code"])
    assert (body["openid"], body["unionid"]) == ("o-chosen", "u-chosen")


def test_more_apps_and_parse_apps(clock: FakeClock) -> None:
    apps = parse_apps(["wxaaa:secret-a", "wxbbb:sec:ret"])
    assert apps == {"wxaaa": "secret-a", "wxbbb": "sec:ret"}
    with pytest.raises(ValueError, match="APPID:SECRET"):
        parse_apps(["wxccc"])
    app = create_app(apps, clock=clock)
    assert sorted(app.state.emulator.apps) == [APPID, "wxaaa", "wxbbb"]
    with httpx.Client(transport=SyncASGITransport(app), base_url=EMU) as c:
        code = c.post("/_emulator/login", json={"appid": "wxbbb"}).json()["code"]
        assert errcode(code2session(c, code, appid="wxbbb", secret="sec:ret")) == 0
        assert c.get("/").json()["apps"] == [APPID, "wxaaa", "wxbbb"]
