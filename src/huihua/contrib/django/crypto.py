"""Encryption at rest for WeChat `session_key`s in Django: huihua's one sealing (accounts.sealing,
AES-256-GCM), keyed from Django's SECRET_KEY.

SECRET_KEY seals; it and SECRET_KEY_FALLBACKS unseal, as Django's own signing does during a key
rotation. Values sealed by earlier versions (Fernet, under HKDF(SECRET_KEY)) are still read, so an
upgrade loses no stored key; the next login of that user replaces them with a sealed value.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from ...accounts.sealing import SecretBox, UnsealError
from ...config import Secret

PURPOSE = "wechat-session-key"  # the service's purpose too: one sealing, one name for it
_LEGACY_INFO = b"huihua.contrib.django: wechat session_key at rest"


def _secrets() -> list[str]:
    return [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]


def box() -> SecretBox:
    """The SecretBox for session_keys under the current SECRET_KEY (read now: tests change it)."""
    return SecretBox([Secret(s) for s in _secrets()], PURPOSE)


def encrypt(plaintext: str) -> str:
    return box().seal(plaintext)


def decrypt(sealed: str) -> str | None:
    """The plaintext, or None when no current or fallback key opens it."""
    if sealed.startswith("v1."):
        try:
            return box().unseal(sealed)
        except (UnsealError, ValueError):
            return None
    return _decrypt_legacy(sealed)


def _legacy_fernet(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_LEGACY_INFO).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _decrypt_legacy(token: str) -> str | None:
    try:
        return MultiFernet([_legacy_fernet(s) for s in _secrets()]).decrypt(token.encode("ascii")).decode()
    except (InvalidToken, ValueError):
        return None
