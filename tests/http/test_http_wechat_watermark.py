"""Open data made for another mini program is refused by the service, and nothing of it is kept."""

from __future__ import annotations

import pytest
from wechatkit import OTHER_APPID, WeChatWorld

from huihua.wechat.crypto import encrypt_data

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "appid", [OTHER_APPID, "wx1234567890abcde", "WX1234567890ABCDEF"], ids=["other", "prefix", "case"]
)
async def test_open_data_watermarked_for_another_appid_is_refused(world: WeChatWorld, appid: str) -> None:
    code, openid = await world.code()
    session_key = world.emulator_app.state.emulator.users[openid].session_key
    encrypted, iv = encrypt_data(session_key, {"nickName": "mallory"}, appid=appid, timestamp=1_767_225_600)
    answer = await world.service().post(
        "/v1/auth/wechat", json={"code": code, "encrypted_data": encrypted, "iv": iv}
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "wechat_data_invalid"
    db = world.app.state.huihua.accounts.db
    # refused before anything is kept: no identity (so no profile), no user, no session
    assert db.execute("SELECT profile FROM huihua_wechat_identity WHERE openid = ?", (openid,)) == []
    assert db.execute("SELECT count(*) FROM huihua_user") == [(0,)]
    assert await world.app.state.huihua.manager.count() == 0
