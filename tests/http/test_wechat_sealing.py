"""Sealing at rest: the session_key WeChat gives us is stored only as AES-GCM ciphertext under
HUIHUA_SECRET_KEY; that ciphertext is not the plaintext, does not open under another key (or
the same key for another purpose), and no file the service writes holds the plaintext.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from test_wechat_session_key_scan import spellings
from wechatkit import WeChatWorld

from huihua.accounts.sealing import SecretBox, UnsealError
from huihua.config import Secret

pytestmark = pytest.mark.anyio
PURPOSE = "wechat-session-key"  # what WeChatLogin seals session_keys for


def at_rest(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


async def test_the_stored_session_key_is_sealed(world: WeChatWorld, tmp_path: os.PathLike[str]) -> None:
    code, openid = await world.code()
    login = await world.service().post("/v1/auth/wechat", json={"code": code})
    assert login.status_code == 200, login.text
    session_key = world.emulator_app.state.emulator.users[openid].session_key
    settings = world.app.state.huihua.settings
    (sealed,) = world.app.state.huihua.accounts.db.execute(
        "SELECT session_key_sealed FROM huihua_wechat_identity WHERE openid = ?", (openid,)
    )[0]

    assert all(s not in sealed for s in spellings(session_key))
    opened = base64.urlsafe_b64decode(sealed.rsplit(".", 1)[1] + "==")
    assert session_key.encode() not in opened  # the body is ciphertext, not an encoding of it
    assert base64.b64decode(session_key) not in opened
    assert SecretBox(settings.secret_key, PURPOSE).unseal(sealed) == session_key  # ours opens it
    for box in (
        SecretBox((Secret("another-secret-key"),), PURPOSE),
        SecretBox((Secret("another-secret-key"), *settings.secret_key[1:]), PURPOSE),
    ):
        with pytest.raises(UnsealError):
            box.unseal(sealed)
    with pytest.raises(UnsealError):  # the same secret, derived for another purpose
        SecretBox(settings.secret_key, "another-purpose").unseal(sealed)
    # a forger who relabels the ciphertext with the key id of a key it knows gets nothing either
    forger = SecretBox((Secret("another-secret-key"),), PURPOSE)
    version, _, rest = sealed.partition(".")
    relabelled = f"{version}.{forger.seal('x').split('.')[1]}.{rest.partition('.')[2]}"
    with pytest.raises(UnsealError):
        forger.unseal(relabelled)

    # at rest means every file: the accounts database, the store, their WAL and journal files
    token = login.json()["token"]
    files = at_rest(Path(os.fspath(tmp_path)))
    assert "sessions.db" in files
    for name, content in files.items():
        for secret in (*spellings(session_key), token):
            assert secret.encode() not in content, f"{secret[:6]}... in plain text in {name}"


def test_sealing_is_randomised_and_authenticated() -> None:
    box = SecretBox((Secret("k1"),), PURPOSE)
    one, two = box.seal("tiihtNczf5v6AKRyjwEUhQ=="), box.seal("tiihtNczf5v6AKRyjwEUhQ==")
    assert one != two  # a fresh nonce each time: equal keys do not look equal at rest
    assert box.unseal(one) == box.unseal(two) == "tiihtNczf5v6AKRyjwEUhQ=="
    body = one.rsplit(".", 1)[1]
    middle = len(body) // 2
    flipped = body[:middle] + ("A" if body[middle] != "A" else "B") + body[middle + 1 :]
    with pytest.raises(UnsealError):
        box.unseal(one.rsplit(".", 1)[0] + "." + flipped)
    rotated = SecretBox((Secret("k2"), Secret("k1")), PURPOSE)
    assert rotated.unseal(one) == "tiihtNczf5v6AKRyjwEUhQ=="  # old values open after rotation
    with pytest.raises(UnsealError):
        SecretBox((Secret("k2"),), PURPOSE).unseal(one)  # and not once the old key is removed
