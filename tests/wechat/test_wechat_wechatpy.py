"""wechatpy 1.8.18, unchanged but for its base URLs, against the emulator over real HTTP.

How to point it elsewhere is in docs/wechat.md#the-emulator: `wxa.API_BASE_URL` per instance, and a subclass whose
`fetch_access_token` uses the emulator (wechatpy hardcodes the token URL). That subclass is this
test's configuration, not a patch of wechatpy.
"""

from __future__ import annotations

from typing import Any

import pytest
import wechatpy
from wechatpy import WeChatClient as WeChatPyClient
from wechatpy.crypto import WeChatWxaCrypto
from wechatpy.exceptions import InvalidAppIdException, WeChatClientException

from huihua.wechat.crypto import verify_raw_signature
from huihua.wechat.emulator import DEFAULT_APPID as APPID
from huihua.wechat.emulator import DEFAULT_SECRET as SECRET
from huihua.wechat.emulator import Emulator


def wechatpy_client(base: str) -> Any:
    base = base.rstrip("/") + "/"

    class EmulatorClient(WeChatPyClient):  # type: ignore[misc]
        API_BASE_URL = base + "cgi-bin/"

        def fetch_access_token(self) -> Any:
            params = {"grant_type": "client_credential", "appid": self.appid, "secret": self.secret}
            return self._fetch_access_token(url=base + "cgi-bin/token", params=params)

    client = EmulatorClient(APPID, SECRET)
    client.wxa.API_BASE_URL = base
    return client


def test_wechatpy_code_to_session_and_decrypt(live_url: str, emu: Emulator) -> None:
    assert wechatpy.__version__ == "1.8.18"
    client = wechatpy_client(live_url)
    user = emu.login()
    session = client.wxa.code_to_session(user["code"])
    assert session["openid"] == user["openid"]
    assert session["unionid"]
    # wechatpy fetched a token first and sent it along to jscode2session (ignored there)
    paths = [(c["path"], sorted(c["params"])) for c in emu.calls]
    assert paths == [
        ("/cgi-bin/token", ["appid", "grant_type", "secret"]),
        ("/sns/jscode2session", ["access_token", "appid", "grant_type", "js_code", "secret"]),
    ]
    made = emu.encrypted_data(user["openid"], {"nickName": "Band", "gender": 1})
    crypto = WeChatWxaCrypto(session["session_key"], made["iv"], APPID)
    data = crypto.decrypt_message(made["encrypted_data"])
    assert data["nickName"] == "Band" and data["watermark"]["appid"] == APPID
    verify_raw_signature(made["raw_data"], session["session_key"], made["signature"])
    with pytest.raises(InvalidAppIdException):
        WeChatWxaCrypto(session["session_key"], made["iv"], "wxother").decrypt_message(made["encrypted_data"])


def test_wechatpy_sees_wechat_errors(live_url: str, emu: Emulator) -> None:
    client = wechatpy_client(live_url)
    code = emu.login()["code"]
    client.wxa.code_to_session(code)
    with pytest.raises(WeChatClientException) as used:
        client.wxa.code_to_session(code)
    assert used.value.errcode == 40163
    emu.settings.content_type = "text/plain"  # wechatpy parses JSON whatever the type says
    with pytest.raises(WeChatClientException) as forged:
        client.wxa.code_to_session("forged")
    assert forged.value.errcode == 40029


def test_wechatpy_paid_unionid_and_token_refresh(live_url: str, emu: Emulator) -> None:
    client = wechatpy_client(live_url)
    user = emu.login(unionid="u-paid")
    trade = emu.pay(user["openid"])
    unionid = client.wxa.get_paid_unionid(user["openid"], transaction_id=trade["transaction_id"])
    assert unionid == "u-paid"
    # a stale classic token: wechatpy refreshes on 40001 by itself and retries once
    emu.add_fault("/wxa/getpaidunionid", errcode=40001, latency_ms=0, http_status=None, times=1)
    trade = emu.pay(user["openid"])
    assert client.wxa.get_paid_unionid(user["openid"], transaction_id=trade["transaction_id"])
    assert [c["path"] for c in emu.calls].count("/cgi-bin/token") == 2
