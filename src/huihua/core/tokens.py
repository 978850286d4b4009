"""Session tokens, the keys stores index them by, and public session ids.

A token is `<tag><secret>`: a 4-character routing tag and 43 characters (256 bits) from
`secrets`. Stores never see the token, only `session_key(token)`: the tag, a dot, and the
SHA-256 of the whole token. The tag is the same for every session of one user (random for
anonymous ones), so a Redis Cluster can keep a user's sessions and their index in one hash slot
and update them in one atomic script. It carries 24 bits about the user and nothing secret.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

TOKEN_LENGTH = 47
_TOKEN_RE = re.compile(r"\A[A-Za-z0-9_-]{47}\Z")
_KEY_RE = re.compile(r"\A[A-Za-z0-9_-]{4}\.[0-9a-f]{64}\Z")
_ID_RE = re.compile(r"\A[A-Za-z0-9_-]{22}\Z")


def routing_tag(user_id: str | None) -> str:
    """The 4-character tag every session of `user_id` shares; random for anonymous sessions."""
    raw = (
        hashlib.sha256(b"huihua-route:" + user_id.encode()).digest()[:3]
        if user_id is not None
        else secrets.token_bytes(3)
    )
    return base64.urlsafe_b64encode(raw).decode()


def new_token(user_id: str | None) -> str:
    return routing_tag(user_id) + secrets.token_urlsafe(32)


def is_well_formed(token: str) -> bool:
    """Checked before any store call, so malformed input never reaches a query or a key."""
    return bool(_TOKEN_RE.match(token))


def session_key(token: str) -> str:
    """What stores hold instead of the token: a copied row or dump cannot be replayed."""
    return token[:4] + "." + hashlib.sha256(token.encode()).hexdigest()


def key_tag(key: str) -> str:
    return key[:4]


def is_session_key(key: str) -> bool:
    return bool(_KEY_RE.match(key))


def new_session_id() -> str:
    """The public name of a session, for lists, logs and revocation; unrelated to the token."""
    return secrets.token_urlsafe(16)


def is_session_id(value: str) -> bool:
    return bool(_ID_RE.match(value))


def fingerprint(token: str) -> str:
    """A short, non-reversible label for logs that must mention a presented token."""
    return hashlib.sha256(b"huihua-log:" + token.encode()).hexdigest()[:12]
