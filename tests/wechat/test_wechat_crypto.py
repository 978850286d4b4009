"""huihua.wechat.crypto against WeChat's official vector and examples (docs/wechat.md#crypto)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from huihua.wechat import (
    BadPayload,
    SignatureMismatch,
    StaleSessionKey,
    WatermarkExpired,
    WatermarkMismatch,
)
from huihua.wechat.crypto import (
    decrypt_data,
    encrypt_data,
    login_signature,
    raw_signature,
    verify_raw_signature,
)

APPID = "wx4f4bc4dec97d474b"
KEY = "tiihtNczf5v6AKRyjwEUhQ=="
IV = "r7BXXKkLb8qrSNn05n0qiA=="
DATA = (
    "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB"
    "+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo"
    "6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CM"
    "s8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARn"
    "s/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpo"
    "G20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew=="
)
PLAIN = (
    b'{"openId":"oGZUI0egBJY1zhBYw2KhdUfwVJJE","nickName":"Band","gender":1,"language":"zh_CN",'
    b'"city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/'
    b"mmopen/vi_32/aSKcBBPpibyKNicHNTMM0qJVh8Kjgiak2AHWr8MHM4WgMEm7GFhsf8OYrySdbvAMvTsw3mo8ibKicsnfN5"
    b'pRjl1p8HQ/0","unionId":"ocMvos6NjeKLIBqg5Mr9QjxrP1FA","watermark":{"timestamp":1477314187,'
    b'"appid":"wx4f4bc4dec97d474b"}}'
)
RAW = (
    '{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong",'
    '"country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/1vZvI39NWFQ9XM4LtQpFrQJ1xlgZxx3w7'
    'bQxKARol6503Iuswjjn6nIGBiaycAjAtpujxyzYsrztuuICqIM5ibXQ/0"}'
)


def test_the_vector_as_copied_matches_the_reference() -> None:
    assert len(PLAIN) == 393
    assert hashlib.sha256(PLAIN).hexdigest() == (
        "3237d8a5dbd413523c194882c7156544d8a06e2afcc97383cc300c17bd09391b"
    )
    assert len(base64.b64decode(DATA)) == 400


def test_official_vector_decrypts() -> None:
    data = decrypt_data(KEY, DATA, IV, appid=APPID)
    assert data["openId"] == "oGZUI0egBJY1zhBYw2KhdUfwVJJE"
    assert data["unionId"] == "ocMvos6NjeKLIBqg5Mr9QjxrP1FA"
    assert data["watermark"] == {"timestamp": 1477314187, "appid": APPID}
    assert data["nickName"] == "Band"


def test_official_vector_re_encrypts_byte_for_byte() -> None:
    assert encrypt_data(KEY, PLAIN, iv=IV) == (DATA, IV)


def test_encrypt_adds_the_watermark_and_round_trips() -> None:
    encrypted, iv = encrypt_data(KEY, {"nickName": "张三"}, appid=APPID, timestamp=1_700_000_000)
    assert len(base64.b64decode(iv)) == 16
    data = decrypt_data(KEY, encrypted, iv, appid=APPID)
    assert data == {"nickName": "张三", "watermark": {"timestamp": 1_700_000_000, "appid": APPID}}


def test_watermark_of_another_appid_is_refused() -> None:
    with pytest.raises(WatermarkMismatch) as caught:
        decrypt_data(KEY, DATA, IV, appid="wx1234567890abcdef")
    assert caught.value.errcode == -41003
    assert not isinstance(caught.value, WatermarkExpired)


def test_freshness_is_checked_when_asked() -> None:
    decrypt_data(KEY, DATA, IV, appid=APPID, max_age=60, now=1477314187 + 59)
    with pytest.raises(WatermarkExpired):
        decrypt_data(KEY, DATA, IV, appid=APPID, max_age=60, now=1477314187 + 61)
    with pytest.raises(WatermarkExpired):  # from the future, beyond clock skew
        decrypt_data(KEY, DATA, IV, appid=APPID, max_age=60, now=1477314187 - 3600)
    encrypted, iv = encrypt_data(KEY, {"watermark": {"appid": APPID}})  # no timestamp
    with pytest.raises(WatermarkExpired):
        decrypt_data(KEY, encrypted, iv, appid=APPID, max_age=60)


def test_a_rotated_session_key_is_a_stale_key_not_a_crash() -> None:
    other = base64.b64encode(b"\x01" * 16).decode()
    with pytest.raises(StaleSessionKey) as caught:
        decrypt_data(other, DATA, IV, appid=APPID)
    assert "session_key" in str(caught.value)


def test_a_wrong_iv_garbles_the_first_block_into_a_stale_key() -> None:
    iv = base64.b64encode(b"\x00" * 16).decode()
    with pytest.raises(StaleSessionKey):
        decrypt_data(KEY, DATA, iv, appid=APPID)


def _encrypt_raw(padded: bytes) -> str:
    encryptor = Cipher(algorithms.AES(base64.b64decode(KEY)), modes.CBC(base64.b64decode(IV))).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


@pytest.mark.parametrize(
    "padded",
    [
        pytest.param(b'{"a":1}' + b"\x00" * 9, id="zero-pad-byte"),
        pytest.param(b'{"a":1}'.ljust(32, b" ")[:15] + b"\x11", id="pad-byte-17"),
        pytest.param(b'{"watermark":1}' + b"\x02", id="inconsistent-pad"),
    ],
)
def test_padding_is_strict_pkcs7_on_16_byte_blocks(padded: bytes) -> None:
    with pytest.raises(StaleSessionKey):
        decrypt_data(KEY, _encrypt_raw(padded), IV, appid=APPID)


def _valid_json_then(pad: Callable[[int], bytes], size: int) -> bytes:
    """A watermarked JSON body of `size` mod 16, then `pad(n)` where n is what fills the block."""
    body = json.dumps({"watermark": {"appid": APPID}, "x": ""}).encode()
    body = body[:-2] + b"y" * ((size - len(body)) % 16) + body[-2:]
    return body + pad(16 - len(body) % 16 if size != 15 else 17)


@pytest.mark.parametrize(
    "padded",
    [
        pytest.param(_valid_json_then(lambda n: b"\0" * (n - 1) + bytes([n]), 7), id="junk-pad"),
        pytest.param(_valid_json_then(lambda n: bytes([n]) * n, 15), id="pad-17-of-32"),
    ],
)
def test_lenient_unpadding_would_accept_these(padded: bytes) -> None:
    """Each would decrypt "fine" under WeChat's demo or wechatpy's lenient unpadding."""
    assert len(padded) % 16 == 0
    lenient = padded[: -padded[-1]]
    assert json.loads(lenient)["watermark"]["appid"] == APPID
    with pytest.raises(StaleSessionKey):
        decrypt_data(KEY, _encrypt_raw(padded), IV, appid=APPID)


@pytest.mark.parametrize(
    "plain",
    [
        pytest.param(b"\xff\xfe not utf-8", id="not-utf8"),
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"[1, 2]", id="not-an-object"),
    ],
)
def test_undecodable_plaintext_is_a_stale_key(plain: bytes) -> None:
    encrypted, iv = encrypt_data(KEY, plain)
    with pytest.raises(StaleSessionKey):
        decrypt_data(KEY, encrypted, iv, appid=APPID)


@pytest.mark.parametrize(
    ("key", "data", "iv", "errcode"),
    [
        pytest.param("not base64!", DATA, IV, -41001, id="key-not-base64"),
        pytest.param(base64.b64encode(b"k" * 24).decode(), DATA, IV, -41001, id="key-24-bytes"),
        pytest.param(KEY, DATA, base64.b64encode(b"i" * 8).decode(), -41002, id="iv-8-bytes"),
        pytest.param(KEY, DATA.replace("+", " "), IV, -41004, id="plus-became-space"),
        pytest.param(KEY, DATA[:-1], IV, -41004, id="bad-base64-padding"),
        pytest.param(KEY, base64.b64encode(b"x" * 20).decode(), IV, -41004, id="not-whole-blocks"),
        pytest.param(KEY, "", IV, -41004, id="empty"),
    ],
)
def test_malformed_input_is_a_bad_payload(key: str, data: str, iv: str, errcode: int) -> None:
    with pytest.raises(BadPayload) as caught:
        decrypt_data(key, data, iv, appid=APPID)
    assert caught.value.errcode == errcode
    assert KEY not in str(caught.value)


def test_plus_turned_space_gets_a_hint() -> None:
    with pytest.raises(BadPayload, match="form encoding"):
        decrypt_data(KEY, DATA.replace("+", " "), IV, appid=APPID)


def test_raw_signature_official_example() -> None:
    signature = "75e81ceda165f4ffa64f4068af58c64b8f54b88c"
    assert raw_signature(RAW, "HyVFkGl5F5OQWJZZaNzBBg==") == signature
    verify_raw_signature(RAW, "HyVFkGl5F5OQWJZZaNzBBg==", signature)
    verify_raw_signature(RAW, "HyVFkGl5F5OQWJZZaNzBBg==", signature.upper())


@pytest.mark.parametrize(
    ("raw", "key", "signature"),
    [
        pytest.param(RAW + " ", "HyVFkGl5F5OQWJZZaNzBBg==", None, id="raw-altered"),
        pytest.param(RAW, KEY, None, id="other-key"),
        pytest.param(RAW, "HyVFkGl5F5OQWJZZaNzBBg==", "75e81c", id="truncated"),
        pytest.param(RAW, "HyVFkGl5F5OQWJZZaNzBBg==", "签名", id="non-ascii"),
    ],
)
def test_raw_signature_mismatch(raw: str, key: str, signature: str | None) -> None:
    with pytest.raises(SignatureMismatch):
        verify_raw_signature(raw, key, signature or "75e81ceda165f4ffa64f4068af58c64b8f54b88c")


def test_login_signature_is_keyed_by_the_key_text() -> None:
    assert login_signature("o0q0otL8aEzpcZL/FT9WsQ==", b'{"foo":"bar"}') == (
        "654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b"
    )
    assert login_signature("o0q0otL8aEzpcZL/FT9WsQ==", '{"foo":"bar"}') == (
        "654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b"
    )
    assert login_signature(KEY) == ("7154f9f8b4b76b92f541cbf0e37d48840fa06e5e42da92a6f80168a1516a4735")
