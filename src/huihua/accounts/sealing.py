"""Encryption at rest for small secrets (WeChat session_keys), under HUIHUA_SECRET_KEY.

AES-256-GCM with a key derived per purpose by HKDF-SHA256. Sealed values name the key that
sealed them (`v1.<key id>.<nonce+ciphertext>`), so several secret keys can be configured: the
first seals, all unseal (itsdangerous-style rotation).
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..config import Secret


class UnsealError(ValueError):
    """No configured key opens this value (rotated out, or tampered with)."""


def _derive(secret: Secret, purpose: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"huihua", info=purpose.encode())
    return hkdf.derive(secret.reveal().encode())


class SecretBox:
    def __init__(self, secrets: Sequence[Secret], purpose: str) -> None:
        if not secrets:
            raise ValueError("SecretBox needs at least one secret key")
        self._keys = [_derive(s, purpose) for s in secrets]
        self._ids = [hashlib.sha256(k).hexdigest()[:8] for k in self._keys]

    def seal(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = AESGCM(self._keys[0]).encrypt(nonce, plaintext.encode(), self._ids[0].encode())
        return f"v1.{self._ids[0]}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def unseal(self, value: str) -> str:
        version, _, rest = value.partition(".")
        key_id, _, body = rest.partition(".")
        if version != "v1" or key_id not in self._ids:
            raise UnsealError("sealed with a key that is no longer configured")
        raw = base64.urlsafe_b64decode(body)
        try:
            plain = AESGCM(self._keys[self._ids.index(key_id)]).decrypt(raw[:12], raw[12:], key_id.encode())
        except InvalidTag as exc:
            raise UnsealError("sealed value was altered") from exc
        return plain.decode()
