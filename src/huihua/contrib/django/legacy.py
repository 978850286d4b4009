"""Sessions imported from Django's `django_session` table, so a switch logs nobody out.

Django's keys are 32 characters of [a-z0-9]; huihua tokens are 47 and stores hold only their
SHA-256. An imported session is stored like any other (its store key is a hash of the old key,
never the key itself) and the store's small key-value space maps `sha256(old key)` to it. The
first request that presents the old key rotates the session into a fresh huihua token and kills
the old key: a legacy key works exactly once, and an unknown one still creates nothing.
"""

from __future__ import annotations

import hashlib
import re

from ...core.tokens import routing_tag

LEGACY_KEY_RE = re.compile(r"\A[a-z0-9]{32}\Z")


def is_legacy_key(value: str | None) -> bool:
    return value is not None and bool(LEGACY_KEY_RE.match(value))


def pointer(old_key: str) -> str:
    """The kv entry naming the imported session; a hash, so a store dump cannot replay it."""
    return "django-legacy:" + hashlib.sha256(b"huihua-legacy:" + old_key.encode()).hexdigest()


def store_key(old_key: str, user_id: str | None) -> str:
    """The imported session's store key: the user's routing tag, so it joins the user's index."""
    digest = hashlib.sha256(b"huihua-legacy-session:" + old_key.encode()).hexdigest()
    return routing_tag(user_id) + "." + digest
