"""Password hashing: argon2id with OWASP's parameters, rehash on login, caps before hashing.

OWASP Password Storage Cheat Sheet: argon2id m=19 MiB, t=2, p=1 is the floor; we use m=19 MiB,
t=2, p=1 so one hash stays well under 100 ms on a small server (a heavier hash is itself a DoS
vector on the login route). Length is checked in bytes before any hashing or normalisation
(Django CVE-2013-1443, CVE-2023-46695). Passwords are verified exactly as received.
"""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..core.errors import PasswordRejected

__all__ = [
    "MAX_PASSWORD_BYTES",
    "MIN_PASSWORD_CHARS",
    "PasswordRejected",
    "check_new_password",
    "hash_password",
    "verify_password",
]

MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_BYTES = 512  # ASVS: >= 64 characters must work; 512 bytes covers 128 CJK characters

_hasher = PasswordHasher(
    time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
)
# Verified against for unknown users, so both answers take one argon2 verification.
_DUMMY_HASH = _hasher.hash("huihua-dummy-password-for-timing")


def check_new_password(password: str) -> None:
    if len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES:
        raise PasswordRejected("password_too_long", f"passwords are at most {MAX_PASSWORD_BYTES} bytes")
    if len(password) < MIN_PASSWORD_CHARS:
        raise PasswordRejected(
            "password_too_short", f"passwords have at least {MIN_PASSWORD_CHARS} characters"
        )


def hash_password(password: str) -> str:
    check_new_password(password)
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> tuple[bool, str | None]:
    """(matches, new hash if the stored one should be upgraded). `stored_hash=None` means an
    unknown user: a dummy hash is verified anyway so timing does not tell them apart."""
    if len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES:
        return False, None
    try:
        _hasher.verify(stored_hash or _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, None
    if stored_hash is None:
        return False, None
    return True, (_hasher.hash(password) if _hasher.check_needs_rehash(stored_hash) else None)
