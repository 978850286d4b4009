"""WeChatClient and AsyncWeChatClient against the emulator: in-process (ASGI) and over real HTTP."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from huihua.config import Secret
from huihua.wechat import (
    AsyncWeChatClient,
    CodeUsed,
    InvalidCode,
    InvalidCredentials,
    InvalidSignature,
    RateLimited,
    UserBlocked,
    WeChatClient,
    WeChatError,
    WeChatUnavailable,
)
from huihua.wechat.emulator import DEFAULT_APPID as APPID
from huihua.wechat.emulator import DEFAULT_SECRET as SECRET
from huihua.wechat.emulator import Emulator

Login = Callable[..., dict[str, str]]
Calls = Callable[[str], list[dict[str, Any]]]
MakeClient = Callable[..., WeChatClient]
MakeAsync = Callable[..., AsyncWeChatClient]


def fault(control: httpx.Client, path: str, **spec: Any) -> None:
    assert control.post("/_emulator/faults", json={"path": path, **spec}).json() == {"ok": True}


# -- the whole API, sync, in-process and over real HTTP ------------------------------------------
@pytest.mark.parametrize("where", ["asgi", "http"])
def test_sync_client_end_to_end(
    where: str,
    request: pytest.FixtureRequest,
    make_client: MakeClient,
    control: httpx.Client,
    login: Login,
    calls: Calls,
) -> None:
    kwargs = {"api_base": request.getfixturevalue("live_url")} if where == "http" else {}
    client = make_client(**kwargs)
    user = login()
    result = client.code2session(user["code"])
    assert result.openid == user["openid"] and result.unionid
    assert result.session_key not in repr(result)
    with pytest.raises(CodeUsed) as used:
        client.code2session(user["code"])
    assert used.value.errcode == 40163 and used.value.rid and used.value.code == "wechat_code_used"
    assert client.check_session_key(result.openid, result.session_key) is True
    new_key = client.reset_session_key(result.openid, result.session_key)
    assert client.check_session_key(result.openid, result.session_key) is False
    assert client.check_session_key(result.openid, new_key) is True
    code = control.post(
        "/_emulator/phone-code", json={"openid": user["openid"], "phone": "13912345678"}
    ).json()["code"]
    info = client.get_phone_number(code, openid=user["openid"])
    assert (info.phone_number, info.pure_phone_number, info.country_code) == (
        "13912345678",
        "13912345678",
        "86",
    )
    trade = control.post("/_emulator/payment", json={"openid": user["openid"]}).json()
    assert client.get_paid_unionid(user["openid"], transaction_id=trade["transaction_id"]) == (result.unionid)
    assert len(calls("/cgi-bin/stable_token")) == 1  # one token for all five calls


@pytest.mark.parametrize("where", ["asgi", "http"])
@pytest.mark.anyio
async def test_async_client_end_to_end(
    where: str,
    request: pytest.FixtureRequest,
    make_async_client: MakeAsync,
    emu: Emulator,
    calls: Calls,
) -> None:
    kwargs = {"api_base": request.getfixturevalue("live_url")} if where == "http" else {}
    client = make_async_client(**kwargs)
    user = emu.login()
    result = await client.code2session(user["code"])
    assert result.openid == user["openid"]
    with pytest.raises(CodeUsed):
        await client.code2session(user["code"])
    assert await client.check_session_key(result.openid, result.session_key) is True
    new_key = await client.reset_session_key(result.openid, result.session_key)
    assert await client.check_session_key(result.openid, result.session_key) is False
    assert await client.check_session_key(result.openid, new_key) is True
    code = emu.phone_code(user["openid"], None)
    info = await client.get_phone_number(code)
    assert info.pure_phone_number.startswith("138")
    trade = emu.pay(user["openid"])
    unionid = await client.get_paid_unionid(
        user["openid"], mch_id=trade["mch_id"], out_trade_no=trade["out_trade_no"]
    )
    assert unionid == result.unionid
    assert len(calls("/cgi-bin/stable_token")) == 1


# -- errcodes become typed errors ----------------------------------------------------------------
def test_errcodes_map_to_typed_errors(make_client: MakeClient, control: httpx.Client, login: Login) -> None:
    client = make_client()
    with pytest.raises(InvalidCode) as invalid:
        client.code2session("forged")
    assert invalid.value.errcode == 40029 and invalid.value.errmsg.startswith("invalid code, rid:")
    with pytest.raises(UserBlocked):
        client.code2session(login(blocked=True)["code"])
    control.post("/_emulator/config", json={"rate_limit": 1})
    openid = login()["openid"]
    client.code2session(login(openid=openid)["code"])
    with pytest.raises(RateLimited) as limited:
        client.code2session(login(openid=openid)["code"])
    assert limited.value.errcode == 45011
    with pytest.raises(InvalidCredentials) as bad:
        make_client(secret="wrong").code2session(login()["code"])
    assert bad.value.errcode == 40125 and "wrong" not in str(bad.value)
    with pytest.raises(InvalidCredentials) as bad:
        make_client(appid="wxnope").access_token()
    assert bad.value.errcode == 40013


def test_check_session_key_raises_on_other_signature_errors(make_client: MakeClient) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/cgi-bin/stable_token":
            return httpx.Response(200, json={"access_token": "T" * 20, "expires_in": 7200})
        return httpx.Response(200, json={"errcode": 87008, "errmsg": "invalid sig_method"})

    client = make_client(api_base="http://wechat", transport=httpx.MockTransport(answer))
    with pytest.raises(InvalidSignature):
        client.check_session_key("o", "AAAAAAAAAAAAAAAAAAAAAA==")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param({"openid": "o1", "session_key": "k"}, "text/plain", id="text-plain"),
        pytest.param(
            {"openid": "o1", "session_key": "k", "errcode": 0, "errmsg": "ok"}, None, id="errcode-0"
        ),
        pytest.param(
            {"openid": "o1", "session_key": "k", "expires_in": 7200, "extra": [1]}, None, id="extra"
        ),
    ],
)
def test_code2session_answers_wechat_sends(
    make_client: MakeClient, body: dict[str, Any], content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, content=json.dumps(body).encode(), headers=headers)
    )
    result = make_client(api_base="http://wechat", transport=transport).code2session("c")
    assert (result.openid, result.session_key, result.unionid) == ("o1", "k", None)


def test_the_emulator_in_text_plain_mode(
    make_client: MakeClient, control: httpx.Client, login: Login
) -> None:
    control.post("/_emulator/config", json={"content_type": "text/plain"})
    client = make_client()
    assert client.code2session(login()["code"]).openid
    with pytest.raises(InvalidCode):
        client.code2session("forged")


@pytest.mark.parametrize(
    ("status", "content"),
    [
        pytest.param(502, b"<html>bad gateway</html>", id="502-html"),
        pytest.param(503, b'{"errcode": 0}', id="503-json"),
        pytest.param(200, b"<html>", id="200-not-json"),
        pytest.param(200, b"[1]", id="200-array"),
        pytest.param(404, b"not found", id="404"),
        pytest.param(200, b'{"errcode": "x"}', id="bad-errcode"),
        pytest.param(200, b'{"session_key": "k"}', id="no-openid"),
    ],
)
def test_unusable_answers_are_unavailable(make_client: MakeClient, status: int, content: bytes) -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(status, content=content)

    client = make_client(api_base="http://wechat", transport=httpx.MockTransport(answer))
    with pytest.raises(WeChatUnavailable):
        client.code2session("c")
    assert len(sent) == 1  # none of these is retried


# -- retries: -1 and network failures only -------------------------------------------------------
def test_busy_twice_then_success_is_three_calls(
    make_client: MakeClient, control: httpx.Client, login: Login, calls: Calls
) -> None:
    fault(control, "/sns/jscode2session", errcode=-1, times=2)
    result = make_client().code2session(login()["code"])
    assert result.openid
    assert [c["errcode"] for c in calls("/sns/jscode2session")] == [-1, -1, 0]


def test_busy_three_times_exhausts_two_retries(
    make_client: MakeClient, control: httpx.Client, login: Login, calls: Calls
) -> None:
    fault(control, "/sns/jscode2session", errcode=-1, times=3)
    with pytest.raises(WeChatUnavailable) as busy:
        make_client().code2session(login()["code"])
    assert busy.value.errcode == -1
    assert len(calls("/sns/jscode2session")) == 3


def test_invalid_code_is_not_retried(make_client: MakeClient, calls: Calls) -> None:
    with pytest.raises(InvalidCode):
        make_client().code2session("forged")
    assert len(calls("/sns/jscode2session")) == 1


def test_retries_zero(make_client: MakeClient, control: httpx.Client, calls: Calls) -> None:
    fault(control, "/cgi-bin/stable_token", errcode=-1)
    with pytest.raises(WeChatUnavailable):
        make_client(retries=0).access_token()
    assert len(calls("/cgi-bin/stable_token")) == 1


@pytest.mark.anyio
async def test_async_busy_twice_then_success_is_three_calls(
    make_async_client: MakeAsync, emu: Emulator, calls: Calls
) -> None:
    emu.add_fault("/sns/jscode2session", errcode=-1, latency_ms=0, http_status=None, times=2)
    assert (await make_async_client().code2session(emu.login()["code"])).openid
    assert [c["errcode"] for c in calls("/sns/jscode2session")] == [-1, -1, 0]
    with pytest.raises(InvalidCode):
        await make_async_client().code2session("forged")
    assert len(calls("/sns/jscode2session")) == 4


@pytest.mark.parametrize(
    ("error", "path", "attempts"),
    [
        pytest.param(httpx.ConnectError, "/sns/jscode2session", 3, id="connect-code"),
        pytest.param(httpx.ConnectTimeout, "/sns/jscode2session", 3, id="connect-timeout-code"),
        pytest.param(httpx.ReadTimeout, "/sns/jscode2session", 1, id="read-timeout-code"),
        pytest.param(httpx.RemoteProtocolError, "/sns/jscode2session", 1, id="dropped-code"),
        pytest.param(httpx.ReadTimeout, "/cgi-bin/stable_token", 3, id="read-timeout-token"),
    ],
)
def test_network_failures(
    make_client: MakeClient, error: type[httpx.TransportError], path: str, attempts: int
) -> None:
    """A failure before sending is always retried; after, only for idempotent calls (a code
    that may have reached WeChat is spent: resending it would turn a timeout into 40163)."""
    sent: list[str] = []

    def fail(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        raise error("boom", request=request)

    client = make_client(api_base="http://wechat", transport=httpx.MockTransport(fail))
    call = client.access_token if path == "/cgi-bin/stable_token" else lambda: client.code2session("c")
    with pytest.raises(WeChatUnavailable) as caught:
        call()
    assert sent == [path] * attempts
    assert caught.value.errcode is None and error.__name__ in str(caught.value)
    assert caught.value.__context__ is None  # httpx's error (its URL has the secret) is not chained


def test_timeout_over_real_http(
    make_client: MakeClient, live_url: str, control: httpx.Client, login: Login, calls: Calls
) -> None:
    fault(control, "/cgi-bin/stable_token", latency_ms=400)
    client = make_client(api_base=live_url, timeout=0.15)
    assert client.access_token()  # the stalled call timed out and was retried
    fault(control, "/sns/jscode2session", latency_ms=400)
    with pytest.raises(WeChatUnavailable, match="ReadTimeout"):
        client.code2session(login()["code"])
    assert len(calls("/cgi-bin/stable_token")) + len(calls("/sns/jscode2session")) <= 3


def test_nothing_listening(make_client: MakeClient) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make_client(api_base=f"http://127.0.0.1:{port}", retries=1)
    with pytest.raises(WeChatUnavailable, match="ConnectError"):
        client.code2session("c")


# -- secrets stay secret -------------------------------------------------------------------------
def test_secrets_never_reach_messages_reprs_or_logs(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    key = "tiihtNczf5v6AKRyjwEUhQ=="
    token = "TOKEN-" + "x" * 40

    def leaky(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/cgi-bin/stable_token":
            return httpx.Response(200, json={"access_token": token, "expires_in": 7200})
        echo = f"bad {request.url.params.get('secret')} {request.url.params.get('access_token')}"
        if request.url.path.startswith("/wxa/"):  # calls made with the session_key
            echo += f" {key}"
        return httpx.Response(200, json={"errcode": -1, "errmsg": echo})

    caplog.set_level(logging.DEBUG)
    client = make_client(api_base="http://wechat", transport=httpx.MockTransport(leaky))
    errors: list[WeChatError] = []
    for call in (
        lambda: client.code2session("c"),
        lambda: client.check_session_key("o", key),
        lambda: client.reset_session_key("o", key),
    ):
        with pytest.raises(WeChatError) as caught:
            call()
        errors.append(caught.value)
    text = " ".join(f"{e} {e!r} {e.errmsg}" for e in errors) + repr(client) + caplog.text
    text += repr(client.secret) + str(client.secret)
    assert "HTTP Request" in caplog.text  # httpx did log the requests...
    for secret in (SECRET, token, key):
        assert secret not in text  # ...but none of these
    assert client.secret.reveal() == SECRET


def test_the_secret_may_be_given_as_a_secret(make_client: MakeClient, login: Login) -> None:
    client = make_client(secret=Secret(SECRET))
    assert client.code2session(login()["code"]).openid
    assert repr(client) == f"WeChatClient(appid={APPID!r}, api_base='http://emulator.test')"


def test_paid_unionid_needs_a_trade(make_client: MakeClient, emu: Emulator) -> None:
    with pytest.raises(ValueError, match="transaction_id"):
        make_client().get_paid_unionid("o")
    assert emu.calls == []  # refused before any I/O


def test_context_managers(emulator_app: Any) -> None:
    from huihua.wechat.emulator import SyncASGITransport

    with WeChatClient(APPID, SECRET, api_base="http://e", transport=SyncASGITransport(emulator_app)) as c:
        assert c.get_access_token().expires_in == 7200
    assert c._http.is_closed


@pytest.mark.anyio
async def test_async_context_manager(emulator_app: Any) -> None:
    transport = httpx.ASGITransport(app=emulator_app)
    async with AsyncWeChatClient(APPID, SECRET, api_base="http://e", transport=transport) as c:
        token = await c.get_stable_access_token()
        assert token.expires_in == 7200 and token.value not in repr(token)
        assert (await c.get_access_token()).value != token.value
    assert c._http.is_closed
