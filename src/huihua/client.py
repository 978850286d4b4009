"""Ask a huihua service whether a session token is live: for your other Python backends.

    from huihua.client import Introspector

    introspector = Introspector("http://huihua.internal:8600", service_key=os.environ["HUIHUA_SERVICE_KEY"])
    answer = introspector.introspect(token)          # or: await introspector.aintrospect(token)
    if not answer.active:
        ...  # 401 with answer.reason (not_authenticated, session_expired, session_revoked)
    user_id = answer.user_id

It calls `POST /v1/introspect` with `X-Service-Key` and keeps each answer for a short while
(`ttl`, 5 s by default). The trade-off: a session revoked (logout, password change, a disabled
user) may still be accepted by this backend until its cached answer expires, up to `ttl`
seconds, and a cached hit does not count as activity of the session. `ttl=0` turns the cache
off: every call asks the service. Negative answers are never kept longer than positive ones,
an answer never outlives the session's own deadline, and the cache is keyed by a SHA-256 of the
token, never the token itself. A service that cannot be reached, or answers 5xx, raises
`ServiceUnavailable`; a refused service key raises `ServiceRefused` (both `IntrospectionError`).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

__all__ = ["Introspection", "IntrospectionError", "Introspector", "ServiceRefused", "ServiceUnavailable"]

INTROSPECT_PATH = "/v1/introspect"
MAX_TOKEN_CHARS = 512  # the service's own limit; a longer token is no session


class IntrospectionError(Exception):
    """The service gave no answer about the token."""


class ServiceUnavailable(IntrospectionError):
    """The service cannot be reached, timed out, or answered 5xx: retry, or fail closed."""


class ServiceRefused(IntrospectionError):
    """The service refused the call: a wrong service key, or its service routes are off."""


@dataclass(frozen=True, slots=True)
class Introspection:
    """The service's answer. `data` is the session's data as it was when the service answered."""

    active: bool
    reason: str | None = None  # why not active: not_authenticated, session_expired, session_revoked
    user: Mapping[str, Any] | None = None  # id, username, email, phone, created_at; None for a visitor
    session: Mapping[str, Any] | None = None  # id, client, created_at, ..., idle_expires_at, expires_at
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def user_id(self) -> str | None:
        return None if self.user is None else str(self.user["id"])


def token_key(token: str) -> bytes:
    """The cache key of a token: its SHA-256, so the cache never holds a usable token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class Introspector:
    """A small client of `POST /v1/introspect`, sync (`introspect`) and async (`aintrospect`),
    with a short cache. Safe to share between threads, or between tasks of one event loop."""

    def __init__(
        self,
        base_url: str,
        service_key: str,
        *,
        ttl: float = 5.0,
        negative_ttl: float | None = None,
        timeout: float = 5.0,
        max_entries: int = 10_000,
        client: httpx.Client | None = None,
        async_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl < 0 or (negative_ttl is not None and negative_ttl < 0):
            raise ValueError("ttl and negative_ttl are seconds, 0 or more")
        self.url = base_url.rstrip("/") + INTROSPECT_PATH
        self.ttl = float(ttl)
        self.negative_ttl = min(self.ttl, self.ttl if negative_ttl is None else float(negative_ttl))
        self.max_entries = max_entries
        self._headers = {"X-Service-Key": service_key, "Accept": "application/json"}
        self._timeout = timeout
        self._client = client
        self._async_client = async_client
        self._owns = (client is None, async_client is None)
        self._clock = clock
        self._cache: dict[bytes, tuple[float, Introspection]] = {}
        self._lock = threading.Lock()

    # -- the cache -------------------------------------------------------------------------------
    def _cached(self, key: bytes) -> Introspection | None:
        with self._lock:
            found = self._cache.get(key)
            if found is None:
                return None
            if self._clock() >= found[0]:
                del self._cache[key]
                return None
            return found[1]

    def _keep(self, key: bytes, answer: Introspection) -> None:
        ttl = self.ttl if answer.active else self.negative_ttl
        if answer.active and answer.session is not None:
            ttl = min(ttl, _seconds_left(answer.session))  # never past the session's deadline
        if ttl <= 0:
            return
        with self._lock:
            self._cache.pop(key, None)
            while len(self._cache) >= self.max_entries:  # the oldest answer goes first
                del self._cache[next(iter(self._cache))]
            self._cache[key] = (self._clock() + ttl, answer)

    def forget(self, token: str) -> None:
        """Drop the cached answer for `token` (after this backend learned it was revoked)."""
        with self._lock:
            self._cache.pop(token_key(token), None)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    # -- the calls -------------------------------------------------------------------------------
    def introspect(self, token: str) -> Introspection:
        if not token or len(token) > MAX_TOKEN_CHARS:
            return Introspection(False, "not_authenticated")
        key = token_key(token)
        if (hit := self._cached(key)) is not None:
            return hit
        if self._client is None:
            self._client = httpx.Client(timeout=self._timeout)
        try:
            response = self._client.post(self.url, json={"token": token}, headers=self._headers)
        except httpx.TransportError as exc:  # refused, reset, timed out, DNS
            raise ServiceUnavailable(f"cannot reach huihua at {self.url}: {_describe(exc)}") from exc
        answer = self._answer(response)
        self._keep(key, answer)
        return answer

    async def aintrospect(self, token: str) -> Introspection:
        if not token or len(token) > MAX_TOKEN_CHARS:
            return Introspection(False, "not_authenticated")
        key = token_key(token)
        if (hit := self._cached(key)) is not None:
            return hit
        if self._async_client is None:
            self._async_client = httpx.AsyncClient(timeout=self._timeout)
        try:
            response = await self._async_client.post(self.url, json={"token": token}, headers=self._headers)
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"cannot reach huihua at {self.url}: {_describe(exc)}") from exc
        answer = self._answer(response)
        self._keep(key, answer)
        return answer

    def _answer(self, response: httpx.Response) -> Introspection:
        status = response.status_code
        if status == 401:
            raise ServiceRefused(
                f"{self.url} refused the service key (X-Service-Key); check HUIHUA_SERVICE_KEY"
            )
        if status == 404:
            raise ServiceRefused(
                f"{self.url} is not there: the service routes are off until HUIHUA_SERVICE_KEY is set"
            )
        if status >= 500 or status == 429:
            raise ServiceUnavailable(f"{self.url} answered {status}; retry shortly")
        if status != 200:
            raise IntrospectionError(f"{self.url} answered {status}: {response.text[:200]}")
        try:
            body = response.json()
            active = body["active"]
        except (ValueError, KeyError, TypeError) as exc:
            raise IntrospectionError(f"{self.url} answered something other than an introspection") from exc
        if active is not True:
            return Introspection(False, str(body.get("reason") or "not_authenticated"))
        return Introspection(True, None, body.get("user"), body.get("session"), body.get("data") or {})

    # -- closing ---------------------------------------------------------------------------------
    def close(self) -> None:
        if self._client is not None and self._owns[0]:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        if self._async_client is not None and self._owns[1]:
            await self._async_client.aclose()
            self._async_client = None
        self.close()

    def __enter__(self) -> Introspector:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    async def __aenter__(self) -> Introspector:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


def _seconds_left(session: Mapping[str, Any]) -> float:
    """Seconds until the earlier of the session's idle and absolute deadlines (inf if unknown)."""
    left = float("inf")
    for name in ("idle_expires_at", "expires_at"):
        value = session.get(name)
        if isinstance(value, str):
            try:
                left = min(left, datetime.fromisoformat(value).timestamp() - time.time())
            except ValueError:
                continue
    return left


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
