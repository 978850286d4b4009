"""Load held: a bounded soak at a steady request rate on each store (issue 14 item 4).

`huihua serve --workers 2` on SQLite, Redis and PostgreSQL in turn, driven at RATE requests a
second (increments, reads, me, session lists, introspection, anonymous sessions made and ended,
and now and then a password login and logout) while the supervisor's and workers' RSS (bounded:
its anonymous part, where a leak grows; file-backed pages follow the database file) and open
file descriptors (/proc) and the store's connections (Redis `INFO clients`, PostgreSQL
`pg_stat_activity`) are sampled. None may grow without bound: the last window of samples stays
within a small margin of the first (after a warm-up), and p99 latency of the last window stays
within 2x of the first (a bound on growth, i.e. a leak, not a speed claim; compared as the
median p99 of three 10-second slices, with a 50 ms floor, so a shared machine's hiccup is not
taken for a leak). Every acknowledged
increment is checked at the end: none lost, none applied twice.

CI runs SOAK_SECONDS = 100 per store (5 minutes in all); `HUIHUA_SOAK_SECONDS=1200` runs an hour.
bench/results/soak.md keeps the figures of the longest run made on each store.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "http"))  # servicekit, fuzzkit

from _record_fuzz import record
from fuzzkit import ServerPool, WorkersServe
from servicekit import PASSWORD, SERVICE_KEY

SOAK_SECONDS = float(os.environ.get("HUIHUA_SOAK_SECONDS", "100"))
RATE = float(os.environ.get("HUIHUA_SOAK_RATE", "30"))  # requests a second, steady
SAMPLE_EVERY = 2.0
COUNTERS, USERS = 20, 3
POOL_BOUND = {"postgres": 2 * 10, "redis": 2 * 50}  # workers x the store's pool max_size
RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
pytestmark = [pytest.mark.slow, pytest.mark.faults, pytest.mark.timeout(SOAK_SECONDS + 180)]


@dataclass
class Sample:
    at: float
    rss_kib: int
    anon_kib: int  # the process's own memory: where a leak grows (RSS also counts mapped files)
    fds: int
    connections: int | None


@dataclass
class Figures:
    store: str
    seconds: float
    requests: int = 0
    status: dict[int, int] = field(default_factory=dict)
    acked_increments: int = 0
    lost: int = 0
    double_applied: int = 0
    samples: list[Sample] = field(default_factory=list)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (sent at, seconds)


def proc_kib(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def sample(server: WorkersServe, connections: Callable[[], int | None], began: float) -> Sample:
    pids = server.pids()
    assert len(pids) == 3, f"the supervisor and 2 workers, not {pids}"
    return Sample(time.monotonic() - began, sum(proc_kib(p, "VmRSS") for p in pids),
                  sum(proc_kib(p, "RssAnon") for p in pids),
                  sum(len(os.listdir(f"/proc/{p}/fd")) for p in pids), connections())  # fmt: skip


def windows(values: list[tuple[float, float]], seconds: float) -> tuple[list[float], list[float]]:
    """(first, last) windows after a warm-up: the first minute (at most a fifth of the run)
    after the first tenth, and the same length at the end."""
    warm = max(5.0, seconds * 0.1)
    length = min(60.0, seconds * 0.2)
    first = [v for t, v in values if warm <= t < warm + length]
    last = [v for t, v in values if t >= seconds - length]
    return first, last


def steady_p99(values: list[tuple[float, float]], seconds: float, *, at_end: bool) -> float:
    """The median p99 of three 10-second slices at the start (after the warm-up) or the end: one
    scheduling hiccup of a shared machine moves one slice, a leak moves them all."""
    warm = max(5.0, seconds * 0.1)
    starts = [seconds - 30, seconds - 20, seconds - 10] if at_end else [warm, warm + 10, warm + 20]
    slices = [p99([v for t, v in values if a <= t < a + 10]) for a in starts]
    return statistics.median(slices)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 2 else (values[0] if values else 0.0)


async def drive(server: WorkersServe, figures: Figures, connections: Callable[[], int | None]) -> None:
    async with httpx.AsyncClient(
        base_url=server.url, timeout=30, limits=httpx.Limits(max_connections=40)
    ) as http:
        head = {"X-Session-Transport": "header"}
        tokens, counts = [], []
        for _ in range(COUNTERS):
            r = await http.patch("/v1/session/data", json={"set": {"n": 0}}, headers=head)
            assert r.status_code == 200, r.text
            tokens.append(r.headers["x-session-token"])
            counts.append(0)
        users = []
        for i in range(USERS):
            name = f"soak-{i}"
            assert (
                await http.post("/v1/accounts", json={"username": name, "password": PASSWORD})
            ).status_code == 201
            r = await http.post("/v1/auth/login", json={"username": name, "password": PASSWORD}, headers=head)
            assert r.status_code == 200, r.text
            users.append(r.json()["token"])

        began = time.monotonic()
        in_flight: set[asyncio.Task[None]] = set()

        async def timed(method: str, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}"} if token else dict(head)
            headers.update(kw.pop("headers", {}))
            sent = time.monotonic()
            r = await http.request(method, path, headers=headers, **kw)
            figures.latencies.append((sent - began, time.monotonic() - sent))
            figures.requests += 1
            figures.status[r.status_code] = figures.status.get(r.status_code, 0) + 1
            return r

        async def one(i: int) -> None:
            kind, k = i % 20, (i // 20) % COUNTERS
            if kind < 9:
                r = await timed("PATCH", "/v1/session/data", tokens[k], json={"incr": {"n": 1}})
                if r.status_code == 200:
                    counts[k] += 1
                    figures.acked_increments += 1
            elif kind < 13:
                await timed("GET", "/v1/session/data", tokens[k])
            elif kind < 15:
                await timed("GET", "/v1/auth/me", users[k % USERS])
            elif kind == 15:
                await timed("GET", "/v1/sessions", users[k % USERS])
            elif kind == 16:
                await timed(
                    "POST",
                    "/v1/introspect",
                    json={"token": tokens[k]},
                    headers={"X-Service-Key": SERVICE_KEY},
                )
            elif kind == 17 and i % 200 == 17:  # now and then a password login (argon2) and its logout
                r = await timed("POST", "/v1/auth/login", json={"username": "soak-0", "password": PASSWORD})
                if r.status_code == 200:
                    await timed("POST", "/v1/auth/logout", r.json()["token"])
            else:  # a visitor's session, made and ended: churn in every store
                r = await timed("PATCH", "/v1/session/data", json={"set": {"cart": [i]}})
                if r.status_code == 200:
                    await timed("POST", "/v1/auth/logout", r.headers["x-session-token"])

        async def sampler() -> None:
            while time.monotonic() - began < figures.seconds:
                figures.samples.append(await asyncio.to_thread(sample, server, connections, began))
                await asyncio.sleep(SAMPLE_EVERY)

        sampling = asyncio.create_task(sampler())
        i = 0
        while (elapsed := time.monotonic() - began) < figures.seconds:
            due = i / RATE
            if due > elapsed:
                await asyncio.sleep(due - elapsed)
            task = asyncio.create_task(one(i))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            i += 1
        await asyncio.gather(*in_flight)
        await sampling
        for token, expected in zip(tokens, counts, strict=True):
            r = await http.get("/v1/session/data", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200, r.text
            n = r.json()["data"]["n"]
            figures.lost += max(0, expected - n)
            figures.double_applied += max(0, n - expected)


def connection_counter(store: str, url: str) -> Callable[[], int | None]:
    if store == "redis":
        import redis

        client = redis.Redis.from_url(url)
        return lambda: int(client.info("clients")["connected_clients"]) - 1  # not this one
    if store == "postgres":
        import psycopg

        conn = psycopg.connect(url, autocommit=True)

        def count() -> int:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
            return int(row[0]) if row else 0

        return count
    return lambda: None


def span(pair: list[float] | None) -> str:
    return f"{pair[0]:.1f} → {pair[1]:.1f}" if pair else "–"


def write_soak_md(figures: Figures, summary: dict[str, Any]) -> None:
    """bench/results/soak.md: per store, the longest run made (a shorter run does not replace it)."""
    folder = RESULTS / "soak"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{figures.store}.json"
    kept = json.loads(path.read_text()) if path.exists() else None
    if kept is None or summary["seconds"] >= kept["seconds"]:
        path.write_text(json.dumps(summary, indent=2) + "\n")
    rows = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    lines = [
        "# Soak: load held on each store",
        "",
        "Written by `tests/faults/test_fuzz_soak.py`: `huihua serve --workers 2` at a steady rate; the "
        "supervisor's and workers' RSS and file descriptors and the store's connections sampled every "
        f"{SAMPLE_EVERY:g} s; first window = the first minute (at most a fifth of the run) after a "
        "warm-up, last window = as long, at the end. Each row is the longest run made on that store "
        "(`HUIHUA_SOAK_SECONDS` per store; CI runs 100 s each).",
        "",
        "| store | date | seconds | requests | rate/s | RSS MiB first → last | anonymous MiB first → last | "
        "fds first → last | store conns first → last | p99 ms first → last | lost | double | 5xx |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['store']} | {r['date']} | {r['seconds']:.0f} | {r['requests']} | {r['rate']:.1f} | "
            f"{r['rss_mib'][0]:.1f} → {r['rss_mib'][1]:.1f} | "
            f"{span(r.get('anon_mib'))} | "
            f"{r['fds'][0]} → {r['fds'][1]} | "
            f"{r['connections'][0]} → {r['connections'][1]} | {r['p99_ms'][0]:.1f} → {r['p99_ms'][1]:.1f} | "
            f"{r['lost']} | {r['double_applied']} | {r['status_5xx']} |"
        )
    (RESULTS / "soak.md").write_text("\n".join(lines) + "\n")


def soak(store: str, url: str | None, tmp_path: Path) -> None:
    env = {"HUIHUA_ANONYMOUS_SESSIONS_PER_IP_MINUTE": "1000000"}
    if url is not None:
        env |= {"HUIHUA_STORE": url, "HUIHUA_DATABASE": f"sqlite:///{tmp_path}/accounts.db"}
    figures = Figures(store, SOAK_SECONDS)
    started = time.monotonic()
    with ServerPool(tmp_path) as pool:
        server = pool.start(workers=2, **env)
        asyncio.run(drive(server, figures, connection_counter(store, url or "")))
        log = server.log()
    first_lat, last_lat = windows(figures.latencies, figures.seconds)

    def series(pick: Callable[[Sample], float | None]) -> list[tuple[float, float]]:
        return [(s.at, float(v)) for s in figures.samples if (v := pick(s)) is not None]

    rss_first, rss_last = windows(series(lambda s: s.rss_kib), figures.seconds)
    anon_first, anon_last = windows(series(lambda s: s.anon_kib), figures.seconds)
    fd_first, fd_last = windows(series(lambda s: s.fds), figures.seconds)
    conn_first, conn_last = windows(series(lambda s: s.connections), figures.seconds)
    status_5xx = sum(n for code, n in figures.status.items() if code >= 500)
    summary = {
        "store": store, "date": time.strftime("%Y-%m-%d", time.gmtime()), "seconds": figures.seconds,
        "requests": figures.requests, "rate": figures.requests / figures.seconds,
        "rss_mib": [max(rss_first) / 1024, max(rss_last) / 1024],
        "anon_mib": [max(anon_first) / 1024, max(anon_last) / 1024], "fds": [int(max(fd_first)), int(max(fd_last))],
        "connections": [int(max(conn_first)) if conn_first else "–", int(max(conn_last)) if conn_last else "–"],
        "p99_ms": [p99(first_lat) * 1000, p99(last_lat) * 1000], "lost": figures.lost,
        "double_applied": figures.double_applied, "status_5xx": status_5xx, "status": figures.status,
    }  # fmt: skip
    write_soak_md(figures, summary)
    record(
        scenario=f"soak-{store}",
        store=store,
        description=f"{figures.seconds:.0f} s at {RATE:g} req/s, 2 workers: RSS, fds, store connections, p99 bounded",
        requests=figures.requests,
        faults_injected=0,
        acked_writes_checked=figures.acked_increments,
        lost=figures.lost,
        resurrected=0,
        double_applied=figures.double_applied,
        status_500=figures.status.get(500, 0),
        recovery_seconds=None,
        duration_seconds=time.monotonic() - started,
        notes=json.dumps({k: summary[k] for k in ("rss_mib", "anon_mib", "fds", "connections", "p99_ms")}),
    )
    assert status_5xx == 0, figures.status
    assert figures.lost == 0 and figures.double_applied == 0
    assert figures.requests >= 0.8 * RATE * figures.seconds, "the rate was not held"
    # leaks: nothing grows without bound (margins absorb allocator and cache warm-up)
    assert max(anon_last) <= max(anon_first) * 1.05 + 16 * 1024, summary
    # a pool may grow on demand up to its bound (and each connection is a descriptor); past that
    # bound, or fds growing beside it, is a leak
    grown = max(0.0, max(conn_last) - max(conn_first)) if conn_first else 0.0
    assert max(fd_last) <= max(fd_first) + 8 + grown, summary
    if conn_first:
        assert max(conn_last) <= max(max(conn_first) + 4, POOL_BOUND[store]), summary
    first_p99 = steady_p99(figures.latencies, figures.seconds, at_end=False)
    last_p99 = steady_p99(figures.latencies, figures.seconds, at_end=True)
    assert last_p99 <= 2 * max(first_p99, 0.05), (first_p99, last_p99, summary)
    assert "Traceback" not in log, log[-3000:]


def test_soak_sqlite(tmp_path: Path) -> None:
    soak("sqlite", None, tmp_path)


def test_soak_redis(tmp_path: Path, redis_url: str) -> None:
    soak("redis", redis_url, tmp_path)


def test_soak_postgres(tmp_path: Path, postgres_url: str) -> None:
    soak("postgres", postgres_url, tmp_path)
