"""The throttled password check of Django's WeChat bind view.

Django has no huihua accounts database for `accounts/throttle.py` to keep its counts in, so this
throttle keeps them in the session store's key-value space, which every worker shares. It gives
the same guarantee with coarser limits than the service's backoff (see the consolidation issue:
one throttle over a Django database adapter is the next step).

Each attempt first *reserves* a slot, atomically (`kv_set(..., only_if_absent=True)` in the
session store, shared by every worker), per account and per client address, and only then runs
Django's `authenticate()`. A failure keeps its slot for the window; a success gives it back. So a
burst of parallel guesses costs no more verifications than the same guesses one after another.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.contrib.auth import authenticate
from django.http import HttpRequest

from ...core.errors import TooManyAttempts, WrongPassword
from ...core.store import Store
from .conf import manager

WINDOW = 900.0  # seconds a failure counts
ACCOUNT_FAILURES = 5  # per account in the window (ASVS 2.2.1; the service backs off after 5 too)
IP_FAILURES = 50  # per client address in the window: one source spraying many accounts


def _reserve(store: Store, prefix: str, limit: int, now: float) -> str | None:
    for slot in range(limit):
        key = f"{prefix}:{slot}"
        if store.kv_set(key, "1", now=now, ttl=WINDOW, only_if_absent=True):
            return key
    return None


def check_password(request: HttpRequest, username: str, password: str) -> Any:
    """The user for `username` and `password`; WrongPassword 403 invalid_credentials (unknown
    user, wrong password and inactive account alike) or 429 too_many_attempts."""
    sessions = manager()
    store, now = sessions.store, sessions.clock.now()
    account = hashlib.sha256(username.strip().casefold().encode()).hexdigest()[:32]
    limits = (
        (f"dj:pw:acct:{account}", ACCOUNT_FAILURES),
        (f"dj:pw:ip:{request.META.get('REMOTE_ADDR')}", IP_FAILURES),
    )
    held: list[str] = []
    for prefix, limit in limits:
        slot = _reserve(store, prefix, limit, now)
        if slot is None:
            for key in held:
                store.kv_delete(key)
            sessions.emit_login_failed(None, "too_many_attempts")
            raise TooManyAttempts(int(WINDOW), "too many failed attempts; try again later")
        held.append(slot)
    user = authenticate(request, username=username, password=password)
    if user is None:  # the slots stay taken: they are the count of failures
        sessions.emit_login_failed(None, "invalid_credentials")
        raise WrongPassword(status=403)
    for key in held:
        store.kv_delete(key)
    return user
