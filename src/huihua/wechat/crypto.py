"""WeChat open data: decrypt encryptedData, verify rawData, sign login state (docs/wechat.md#crypto).

Decryption is AES-128-CBC keyed by the 16 bytes the session_key encodes, with strict PKCS#7 on
16-byte blocks (WeChat's demos and wechatpy strip padding without checking it, so a wrong key can
"succeed" into garbage). The two HMAC-style signatures, by contrast, are keyed by the base64
*text* of the session_key, as WeChat's own examples show.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import time
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .errors import (
    BadPayload,
    SignatureMismatch,
    StaleSessionKey,
    WatermarkExpired,
    WatermarkMismatch,
)

__all__ = [
    "decrypt_data",
    "encrypt_data",
    "login_signature",
    "raw_signature",
    "verify_raw_signature",
]

_CLOCK_SKEW = 300.0  # a watermark this far in the future is still accepted (phone clocks drift)


def _b64(value: str | bytes, what: str, errcode: int, size: int | None = None) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        hint = " (a '+' turned into ' ' by form encoding?)" if " " in str(value) else ""
        raise BadPayload(f"{what} is not valid base64{hint}", errcode=errcode) from None
    if size is not None and len(raw) != size:
        raise BadPayload(f"{what} must encode {size} bytes, not {len(raw)}", errcode=errcode)
    return raw


def _cipher(session_key: str, iv: bytes) -> Cipher[modes.CBC]:
    key = _b64(session_key, "session_key", -41001, 16)
    return Cipher(algorithms.AES(key), modes.CBC(iv))


def decrypt_data(
    session_key: str,
    encrypted_data: str,
    iv: str,
    *,
    appid: str,
    max_age: float | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The JSON object inside `encrypted_data`, after checking its watermark.

    Raises BadPayload (malformed input), StaleSessionKey (the key does not fit the data: padding,
    UTF-8 or JSON failed), WatermarkMismatch (another appid) or WatermarkExpired (older than
    `max_age` seconds at `now`).
    """
    iv_bytes = _b64(iv, "iv", -41002, 16)
    data = _b64(encrypted_data, "encrypted_data", -41004)
    if not data or len(data) % 16:
        raise BadPayload(
            f"encrypted_data must be a whole number of 16-byte blocks, not {len(data)} bytes",
            errcode=-41004,
        )
    decryptor = _cipher(session_key, iv_bytes).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    try:
        unpadder = padding.PKCS7(128).unpadder()
        plain = unpadder.update(padded) + unpadder.finalize()
        payload = json.loads(plain.decode("utf-8"))
    except ValueError:  # bad padding, UnicodeDecodeError and JSONDecodeError are all ValueErrors
        raise StaleSessionKey("encrypted_data does not decrypt", errcode=-41003) from None
    if not isinstance(payload, dict):
        raise StaleSessionKey("encrypted_data does not hold a JSON object", errcode=-41003)
    watermark = payload.get("watermark")
    if not isinstance(watermark, dict) or not hmac.compare_digest(
        str(watermark.get("appid", "")).encode(), appid.encode()
    ):
        raise WatermarkMismatch("the watermark names another appid", errcode=-41003)
    if max_age is not None:
        stamp = watermark.get("timestamp")
        current = time.time() if now is None else now
        if not isinstance(stamp, int | float) or isinstance(stamp, bool):
            raise WatermarkExpired("the watermark has no timestamp", errcode=-41003)
        if not current - max_age <= stamp <= current + _CLOCK_SKEW:
            raise WatermarkExpired(
                f"the watermark is {int(current - stamp)} s old; max_age is {max_age:g} s",
                errcode=-41003,
            )
    return payload


def encrypt_data(
    session_key: str,
    data: Mapping[str, Any] | bytes,
    *,
    appid: str | None = None,
    timestamp: int | None = None,
    iv: str | None = None,
) -> tuple[str, str]:
    """(encrypted_data, iv), both base64, as WeChat makes them: JSON, PKCS#7, AES-128-CBC.

    A mapping gets `watermark: {timestamp, appid}` added when `appid` is given; bytes are
    encrypted as they are (the official vector round-trips byte for byte). `iv` defaults to 16
    random bytes.
    """
    if isinstance(data, bytes):
        plain = data
    else:
        body = dict(data)
        if appid is not None:
            stamp = int(time.time()) if timestamp is None else timestamp
            body["watermark"] = {"timestamp": stamp, "appid": appid}
        plain = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    iv_bytes = os.urandom(16) if iv is None else _b64(iv, "iv", -41002, 16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = _cipher(session_key, iv_bytes).encryptor()
    cipher = encryptor.update(padded) + encryptor.finalize()
    return base64.b64encode(cipher).decode("ascii"), base64.b64encode(iv_bytes).decode("ascii")


def raw_signature(raw_data: str, session_key: str) -> str:
    """sha1(rawData + session_key) as hex, the signature wx.getUserInfo sends beside rawData."""
    return hashlib.sha1((raw_data + session_key).encode("utf-8")).hexdigest()  # noqa: S324 WeChat's


def verify_raw_signature(raw_data: str, session_key: str, signature: str) -> None:
    """Raise SignatureMismatch unless `signature` is sha1(raw_data + session_key); constant time."""
    expected = raw_signature(raw_data, session_key).encode("ascii")
    if not hmac.compare_digest(expected, signature.strip().lower().encode("utf-8", "replace")):
        raise SignatureMismatch("rawData signature does not match")


def login_signature(session_key: str, body: bytes | str = b"") -> str:
    """hmac_sha256 over `body` (empty for GET), keyed by the base64 TEXT of the session_key.

    This is the `signature` of checkSessionKey and resetUserSessionKey (docs/wechat.md#crypto).
    """
    message = body.encode("utf-8") if isinstance(body, str) else body
    return hmac.new(session_key.encode("utf-8"), message, hashlib.sha256).hexdigest()
