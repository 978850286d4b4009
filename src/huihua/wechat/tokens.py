"""The access-token manager: one token per appid, shared by every process through the store.

WeChat's own advice (a "central control server") in store form: the token lives under one kv key
with its deadlines; the first process to see it due takes a kv lock (`only_if_absent`, with a TTL
so a crashed holder cannot wedge the others), fetches, stores, and releases. Everyone else keeps
using the current token while it is valid, or waits briefly and re-reads. Tokens are refreshed
`margin` (300 s) before they expire; after a 40001/42001 the caller asks for a replacement of the
token WeChat rejected, and only that one token is replaced, once, however many callers saw it fail.

The stable token (`/cgi-bin/stable_token`, normal mode) is the default: it cannot invalidate the
token other processes hold. force_refresh is never used here (20 a day; for leaked tokens only).

`AsyncTokenManager` is the hand-written source of the twins; `TokenManager`, at the end, is
generated from it by scripts/unasync.py.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config import DEFAULT_WECHAT_API_BASE as DEFAULT_API_BASE
from ..core.clock import Clock
from .errors import WeChatUnavailable
from .protocol import AccessToken, Flow, KvDelete, KvGet, KvSet, Sleep, TokenSource


@dataclass(frozen=True)
class _Cached:
    token: str
    refresh_at: float
    expires_at: float


def _load(raw: str | None) -> _Cached | None:
    if raw is None:
        return None
    try:
        item = json.loads(raw)
        return _Cached(str(item["access_token"]), float(item["refresh_at"]), float(item["expires_at"]))
    except (ValueError, KeyError, TypeError):
        return None  # unreadable: treat as absent, the next refresh overwrites it


class TokenCache(TokenSource):
    """The token manager's logic, as flows (no I/O): `get()` and `replace(rejected)`."""

    def __init__(
        self,
        appid: str,
        fetch: Callable[[], Flow[AccessToken]],
        *,
        clock: Clock,
        stable: bool = True,
        api_base: str = DEFAULT_API_BASE,
        margin: float = 300.0,
        lock_ttl: float = 30.0,
        wait: float = 35.0,
    ) -> None:
        kind = "stable_token" if stable else "token"
        base = api_base.rstrip("/")
        digest = hashlib.sha256(base.encode()).hexdigest()[:8]
        where = "" if base == DEFAULT_API_BASE else f"@{digest}"  # the emulator's tokens apart
        self.key = f"huihua:wechat:{kind}:{appid}{where}"
        self.lock_key = self.key + ":lock"
        self._fetch = fetch
        self._clock = clock
        self._margin = margin
        self._lock_ttl = lock_ttl
        self._wait = wait

    def get(self) -> Flow[str]:
        """A token not yet due for refresh (refreshing it when it is)."""
        return self._obtain(rejected=None)

    def replace(self, rejected: str) -> Flow[str]:
        """A token other than `rejected` (which WeChat just refused with 40001/42001)."""
        return self._obtain(rejected=rejected)

    def _refresh(self, rejected: str | None) -> Flow[str]:
        now = self._clock.now()
        cached = _load((yield KvGet(self.key, now)))  # refreshed while we took the lock?
        if cached and cached.token != rejected and now < cached.refresh_at:
            return cached.token
        token = yield from self._fetch()
        now = self._clock.now()
        life = max(token.expires_in, 1)
        item = {
            "access_token": token.value,
            "refresh_at": now + max(life - self._margin, life / 2),
            "expires_at": now + life,
        }
        yield KvSet(self.key, json.dumps(item), now, life)
        return token.value

    def clear(self) -> Flow[bool]:
        return (yield KvDelete(self.key))  # type: ignore[no-any-return]

    def _obtain(self, rejected: str | None) -> Flow[str]:
        waited, delay = 0.0, 0.01  # counted in sleeps, not by the clock, which tests freeze
        while True:
            now = self._clock.now()
            cached = _load((yield KvGet(self.key, now)))
            if cached and cached.token != rejected and now < cached.refresh_at:
                return cached.token
            owner = secrets.token_hex(8)
            if (yield KvSet(self.lock_key, owner, now, self._lock_ttl, only_if_absent=True)):
                # Not try/finally: a flow its driver abandons (cancelled, store down) must not
                # yield again; its lock then lapses after lock_ttl.
                try:
                    token = yield from self._refresh(rejected)
                except Exception:
                    yield KvDelete(self.lock_key, if_value=owner)
                    raise
                yield KvDelete(self.lock_key, if_value=owner)
                return token
            if cached and cached.token != rejected and now < cached.expires_at:
                return cached.token  # due, but valid, and another process is refreshing it
            if waited >= self._wait:
                raise WeChatUnavailable(
                    f"no access token after waiting {self._wait:g} s for another process to get one"
                )
            yield Sleep(delay)
            waited += delay
            delay = min(delay * 2, 0.2)


# unasync: source of TokenManager: everything below, up to the generated part.


class AsyncTokenManager:
    """The face of a TokenCache: its flows, run by the WeChat client that made it."""

    def __init__(self, cache: TokenCache, run: Callable[[Flow[Any]], Any]) -> None:
        self.cache = cache
        self._run = run

    async def get(self) -> str:
        return str(await self._run(self.cache.get()))

    async def replace(self, rejected: str) -> str:
        return str(await self._run(self.cache.replace(rejected)))

    async def clear(self) -> None:
        await self._run(self.cache.clear())


# unasync: generated from wechat/tokens.py by scripts/unasync.py: do not edit below this line;
# edit the async twin there, then run `python scripts/unasync.py`.


class TokenManager:
    """The face of a TokenCache: its flows, run by the WeChat client that made it."""

    def __init__(self, cache: TokenCache, run: Callable[[Flow[Any]], Any]) -> None:
        self.cache = cache
        self._run = run

    def get(self) -> str:
        return str(self._run(self.cache.get()))

    def replace(self, rejected: str) -> str:
        return str(self._run(self.cache.replace(rejected)))

    def clear(self) -> None:
        self._run(self.cache.clear())
