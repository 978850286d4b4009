"""Prometheus metrics, one registry per app (so tests and several apps never share counts).

With `huihua serve --workers N` the workers share prometheus-client's multiprocess mode: `serve`
points PROMETHEUS_MULTIPROC_DIR at a private folder before the workers start, each worker writes
its values there, and /metrics on any worker answers the totals of all of them. Several `serve`
processes (or machines) each answer their own totals: scrape each.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.data import DataChanges
from ..core.events import SessionEvent
from ..core.record import SessionRecord, Timing
from ..core.store import AsyncStore

R = TypeVar("R")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "huihua_http_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.logins = Counter("huihua_logins", "Login attempts", ["method", "outcome"], registry=r)
        self.errors = Counter("huihua_errors", "Error answers by code", ["code"], registry=r)
        self.events = Counter("huihua_session_events", "Session lifecycle events", ["kind"], registry=r)
        # a store-wide count any worker may take: across workers the latest one is the answer
        self.active = Gauge(
            "huihua_active_sessions", "Live sessions in the store", registry=r, multiprocess_mode="mostrecent"
        )
        self.store_latency = Histogram(
            "huihua_store_latency_seconds",
            "Store call latency",
            ["op"],
            registry=r,
            buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0),
        )
        self.sweeps = Counter(
            "huihua_sweeper_rounds",
            "Sweeper rounds by lease outcome: held, waited, failed",
            ["lease"],
            registry=r,
        )
        self.swept = Counter("huihua_swept_sessions", "Expired sessions the sweeper purged", registry=r)
        # 1 while this process holds the sweeper lease (as of its last round); summed over workers
        self.lease = Gauge(
            "huihua_sweeper_lease_held",
            "Whether this process holds the sweeper lease",
            registry=r,
            multiprocess_mode="livesum",
        )
        self._active_at = 0.0

    def on_event(self, event: SessionEvent) -> None:
        self.events.labels(event.kind).inc()

    def on_sweep(self, outcome: str, purged: int) -> None:
        self.sweeps.labels(outcome).inc()
        self.swept.inc(purged)
        self.lease.set(1 if outcome == "held" else 0)

    async def render(self, count_sessions: Callable[[], Awaitable[int]]) -> bytes:
        if time.monotonic() - self._active_at > 5.0:  # counting is a scan; not on every scrape
            self._active_at = time.monotonic()
            self.active.set(await count_sessions())
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # every worker's values, added up
            merged = CollectorRegistry()
            MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return generate_latest(merged)
        return generate_latest(self.registry)


class TimedStore:
    """An AsyncStore that records how long each call took (`huihua_store_latency_seconds`, by
    operation). Every method is written out, so mypy checks it against the protocol."""

    def __init__(self, store: AsyncStore, metrics: Metrics) -> None:
        self._store = store
        self._histogram = metrics.store_latency
        self._observers: dict[str, Callable[[float], None]] = {}

    async def _timed(self, op: str, call: Awaitable[R]) -> R:
        start = time.perf_counter()
        try:
            return await call
        finally:
            observe = self._observers.get(op)
            if observe is None:  # an operation's series appears once it is first called
                observe = self._observers[op] = self._histogram.labels(op).observe
            observe(time.perf_counter() - start)

    async def create(self, record: SessionRecord, *, max_per_user: int | None = None) -> list[str]:
        return await self._timed("create", self._store.create(record, max_per_user=max_per_user))

    async def get(self, key: str) -> SessionRecord | None:
        return await self._timed("get", self._store.get(key))

    async def update(
        self,
        key: str,
        now: float,
        *,
        changes: DataChanges | None = None,
        timing: Timing | None = None,
        max_bytes: int,
    ) -> SessionRecord | None:
        call = self._store.update(key, now, changes=changes, timing=timing, max_bytes=max_bytes)
        return await self._timed("update", call)

    async def rotate(
        self,
        old_key: str,
        new: SessionRecord,
        now: float,
        *,
        keep_data: bool,
        max_bytes: int,
        max_per_user: int | None = None,
    ) -> tuple[SessionRecord, list[str]] | None:
        call = self._store.rotate(
            old_key, new, now, keep_data=keep_data, max_bytes=max_bytes, max_per_user=max_per_user
        )
        return await self._timed("rotate", call)

    async def revoke(self, key: str, now: float) -> SessionRecord | None:
        return await self._timed("revoke", self._store.revoke(key, now))

    async def revoke_id(self, user_id: str, session_id: str, now: float) -> bool:
        return await self._timed("revoke_id", self._store.revoke_id(user_id, session_id, now))

    async def revoke_user(self, user_id: str, now: float, *, except_id: str | None = None) -> list[str]:
        return await self._timed("revoke_user", self._store.revoke_user(user_id, now, except_id=except_id))

    async def set_user_blocked(self, user_id: str, blocked: bool, now: float) -> list[str]:
        return await self._timed("set_user_blocked", self._store.set_user_blocked(user_id, blocked, now))

    async def list_user(self, user_id: str, now: float) -> list[SessionRecord]:
        return await self._timed("list_user", self._store.list_user(user_id, now))

    async def purge(self, now: float, limit: int) -> int:
        return await self._timed("purge", self._store.purge(now, limit))

    async def count(self, now: float) -> int:
        return await self._timed("count", self._store.count(now))

    async def kv_set(
        self, key: str, value: str, *, now: float, ttl: float, only_if_absent: bool = False
    ) -> bool:
        call = self._store.kv_set(key, value, now=now, ttl=ttl, only_if_absent=only_if_absent)
        return await self._timed("kv_set", call)

    async def kv_get(self, key: str, *, now: float) -> str | None:
        return await self._timed("kv_get", self._store.kv_get(key, now=now))

    async def kv_delete(self, key: str, *, if_value: str | None = None) -> bool:
        return await self._timed("kv_delete", self._store.kv_delete(key, if_value=if_value))

    async def ping(self) -> None:
        await self._timed("ping", self._store.ping())

    async def close(self) -> None:
        await self._timed("close", self._store.close())


class RequestMetricsMiddleware:
    """Counts every request by route and status, and every error answer by its code.

    The code is read from the answer itself (`{"error": {"code": ...}}`), so errors written by a
    route, an exception handler or a middleware (csrf_failed, payload_too_large) all count. An
    exception escaping the app becomes the 500 `internal_error` answer outside this middleware,
    and is counted as such here."""

    MAX_ERROR_BODY = 16 * 1024

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        error_body: bytearray | None = None
        code: str | None = None

        async def watch(message: Message) -> None:
            nonlocal status, error_body
            if message["type"] == "http.response.start":
                status = message["status"]
                if status >= 400:
                    error_body = bytearray()
            elif error_body is not None and len(error_body) < self.MAX_ERROR_BODY:
                error_body += message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            status, code = 500, "internal_error"
            raise
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            self.metrics.requests.labels(scope["method"], path, str(status)).inc()
            if code is None and error_body is not None:
                code = _error_code(bytes(error_body), status)
            if code is not None:
                self.metrics.errors.labels(code).inc()


def _error_code(body: bytes, status: int) -> str:
    """The `error.code` of an error answer; `http_<status>` when it has none."""
    try:
        found = json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return f"http_{status}"
    return found if isinstance(found, str) and found.isidentifier() and len(found) <= 64 else f"http_{status}"
