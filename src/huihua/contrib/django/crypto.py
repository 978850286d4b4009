"""Encryption at rest for WeChat `session_key`s, keyed from Django's SECRET_KEY.

Fernet (AES-128-CBC + HMAC-SHA256) under a key derived with HKDF-SHA256 from SECRET_KEY, so the
database alone does not reveal a session_key. SECRET_KEY_FALLBACKS still decrypt, as Django's own
signing does during a key rotation; new values always use the current key.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

_INFO = b"huihua.contrib.django: wechat session_key at rest"


def _fernet(secret: str | bytes) -> Fernet:
    raw = secret.encode() if isinstance(secret, str) else secret
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(raw)
    return Fernet(base64.urlsafe_b64encode(key))


def _keys() -> MultiFernet:
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_fernet(s) for s in secrets])


def encrypt(plaintext: str) -> str:
    return _keys().encrypt(plaintext.encode()).decode("ascii")


def decrypt(ciphertext: str) -> str | None:
    """The plaintext, or None when no current or fallback key opens it."""
    try:
        return _keys().decrypt(ciphertext.encode("ascii")).decode()
    except (InvalidToken, ValueError):
        return None
