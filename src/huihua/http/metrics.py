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
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.events import SessionEvent


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
    """An AsyncStore that records how long each call took."""

    def __init__(self, store: Any, metrics: Metrics) -> None:
        self._store = store
        self._histogram = metrics.store_latency

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)
        observe = self._histogram.labels(name).observe

        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await method(*args, **kwargs)
            finally:
                observe(time.perf_counter() - start)

        setattr(self, name, timed)
        return timed


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
