"""Capacity: throughput of 1 and 2 `huihua serve` processes on Redis and on PostgreSQL, the store's
own work per request, and a capacity model written to bench/results/scale.md (issue 11 item 6).

    uv run python bench/scale.py [--duration 6] [--connections 16] [--output PATH|-]

For each store and process count, every connection carries its own logged-in session and wrk
drives GET /v1/auth/me and PATCH /v1/session/data {"incr"} (with 2 processes: one wrk per process,
at the same time, half the connections each). Around each measurement it reads:
- Redis: `INFO commandstats` (calls and server-side µs per command) and the redis-server's own
  CPU time. The Redis is started here, on a free loopback port, so nothing else is counted.
- PostgreSQL: `pg_stat_database` (commits, rows read and written) for a database of its own
  (huihua_bench_scale, created on 127.0.0.1:5432 and its tables dropped), and the CPU time of the
  backends serving huihua's connections.
Then `redis-benchmark` gives the Redis server's raw capacity for simple commands, and the model
turns "store work per request" into requests per second per Redis shard and per PostgreSQL core.
Bounded: every wrk run lasts --duration seconds; the whole run takes about four minutes.
Benchmarks are not tests: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "http"))
import run as httpbench  # noqa: E402 - bench/http/run.py: wrk driver, process CPU, seeding helpers

ROOT = HERE.parent
RESULTS = HERE / "results" / "scale.md"
PG_ADMIN = os.environ.get("BENCH_POSTGRES_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DB = "huihua_bench_scale"
SCENARIOS = ("me", "incr")
log = httpbench.log


# -- the stores ----------------------------------------------------------------------------------
class RedisServer:
    """A redis-server of our own (no persistence, as a cache-less benchmark needs)."""

    def __init__(self, folder: Path) -> None:
        self.port = httpbench.free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(folder), "--maxmemory-policy", "noeviction"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import redis

        self.client = redis.Redis(port=self.port)
        for _ in range(100):
            with contextlib.suppress(redis.ConnectionError):
                if self.client.ping():
                    break
            time.sleep(0.05)
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def snapshot(self) -> dict[str, Any]:
        stats = self.client.info("commandstats")
        commands = {k.removeprefix("cmdstat_"): (int(v["calls"]), int(v["usec"])) for k, v in stats.items()}
        return {"commands": commands, "cpu": httpbench.tree_cpu(self.proc.pid)}

    def reset(self) -> None:
        self.client.flushall()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class PostgresDatabase:
    """huihua_bench_scale on the local PostgreSQL, emptied before each configuration."""

    def __init__(self) -> None:
        import psycopg

        self.psycopg = psycopg
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DB,)).fetchone():
                conn.execute(f"CREATE DATABASE {PG_DB}")
        self.url = PG_ADMIN.rsplit("/", 1)[0] + "/" + PG_DB

    def reset(self) -> None:
        with self.psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(
                "DROP TABLE IF EXISTS huihua_session, huihua_kv, huihua_user, huihua_wechat_identity CASCADE"
            )

    def snapshot(self) -> dict[str, Any]:
        time.sleep(11)  # an idle backend flushes its statistics within 10 s (PostgreSQL 15+)
        with self.psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            row = conn.execute(
                "SELECT xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted, tup_updated,"
                " tup_deleted FROM pg_stat_database WHERE datname = %s", (PG_DB,),
            ).fetchone()  # fmt: skip
            pids = [
                r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (PG_DB,))
            ]
        assert row is not None
        names = ("commits", "rollbacks", "returned", "fetched", "inserted", "updated", "deleted")
        return {**dict(zip(names, row, strict=True)), "cpu": sum(httpbench.tree_cpu(p) for p in pids)}


# -- huihua processes ----------------------------------------------------------------------------
@dataclass
class Serve:
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def serving(n: int, env: dict[str, str], folder: Path) -> Iterator[list[Serve]]:
    started: list[Serve] = []
    try:
        for i in range(n):  # one after the other: the first creates the tables
            port = httpbench.free_port()
            out = (folder / f"serve-{i}.log").open("ab")
            proc = subprocess.Popen(
                [str(Path(sys.executable).parent / "huihua"), "serve", "--host", "127.0.0.1", "--port", str(port),
                 "--log-level", "warning"],
                env={**os.environ, **env}, cwd=folder, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            started.append(Serve(port, proc))
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(OSError):
                    if httpbench.http("GET", started[-1].base + "/readyz", timeout=2)[0] == 200:
                        break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"huihua serve did not start: {(folder / f'serve-{i}.log').read_text()[-500:]}"
                    )
                time.sleep(0.1)
        yield started
    finally:
        for s in started:
            s.proc.terminate()
        for s in started:
            try:
                s.proc.wait(15)
            except subprocess.TimeoutExpired:
                s.proc.kill()


def seed(server: Serve, connections: int) -> list[str]:
    peer = httpbench.Peer(name="seed", title="", server="", scenarios=(), command=lambda p: [], env=lambda p: {},
                          ready_path="/healthz", seed=lambda p, n: [])  # fmt: skip
    peer.port, peer.login_headers = server.port, {"X-Session-Transport": "header"}
    return httpbench._seed_huihua(peer, connections)


def wrk_many(
    servers: list[Serve], scenario: str, files: list[Path], connections: int, duration: float
) -> dict[str, Any]:
    """One wrk per process, at the same time; totals and the worst latencies."""

    def one(i: int) -> dict[str, Any]:
        peer = httpbench.Peer(name=f"p{i}", title="", server="", scenarios=(), command=lambda p: [],
                              env=lambda p: {}, ready_path="/healthz", seed=lambda p, n: [])  # fmt: skip
        peer.port = servers[i].port
        return httpbench.wrk(peer, scenario, connections=connections, duration=duration, timeout=duration + 5,
                             headers_file=files[i])  # fmt: skip

    with ThreadPoolExecutor(len(servers)) as pool:
        results = list(pool.map(one, range(len(servers))))
    seconds = max(r["duration_us"] for r in results) / 1e6
    ok = sum(r["requests"] - r["status_errors"] for r in results)
    errors = sum(r["status_errors"] + r["timeouts"] + r["connect_errors"] + r["read_errors"] + r["write_errors"]
                 for r in results)  # fmt: skip
    return {"requests": sum(r["requests"] for r in results), "ok": ok, "errors": errors, "seconds": seconds,
            "rps": ok / seconds, "p50_ms": max(r["p50_us"] for r in results) / 1000,
            "p99_ms": max(r["p99_us"] for r in results) / 1000}  # fmt: skip


@dataclass
class Measurement:
    store: str
    processes: int
    scenario: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    huihua_cpu_ms: float  # per request, all processes together
    store_cpu_us: float  # per request: redis-server, or the PostgreSQL backends serving huihua
    ops: dict[str, float] = field(default_factory=dict)  # store operations per request
    redis_usec: float | None = None  # per request, inside huihua's Lua scripts (commandstats)


SCRIPTS = ("evalsha", "eval")  # huihua's round trips; commandstats also counts the calls inside them


def delta_redis(
    before: dict[str, Any], after: dict[str, Any], requests: int
) -> tuple[dict[str, float], float]:
    ops: dict[str, float] = {}
    usec = 0
    for name, (calls, us) in after["commands"].items():
        c0, u0 = before["commands"].get(name, (0, 0))
        if name in ("info", "ping") or calls == c0:  # our own snapshots, and the readiness probe
            continue
        ops[name] = (calls - c0) / requests
        if name in SCRIPTS:  # a script's time includes the commands it runs
            usec += us - u0
    return ops, usec / requests


def delta_pg(before: dict[str, Any], after: dict[str, Any], requests: int) -> dict[str, float]:
    keys = ("commits", "rollbacks", "returned", "fetched", "inserted", "updated", "deleted")
    return {k: (after[k] - before[k]) / requests for k in keys}


def measure_config(store: str, n: int, url: str, stores: dict[str, Any], folder: Path,
                   args: argparse.Namespace) -> list[Measurement]:  # fmt: skip
    backend = stores[store]
    backend.reset()
    accounts = url if store == "postgres" else f"sqlite:///{folder}/accounts-{n}.db"
    env = {
        "HUIHUA_STORE": url,
        "HUIHUA_DATABASE": accounts,
        "HUIHUA_SECRET_KEY": "bench-scale-secret-key-0123456789abcdef",
    }
    out: list[Measurement] = []
    with serving(n, env, folder) as servers:
        headers = seed(servers[0], args.connections)
        per = args.connections // n
        files = []
        for i in range(n):
            files.append(folder / f"{store}-{n}-{i}.headers")
            files[-1].write_text("\n".join(headers[i * per : (i + 1) * per]) + "\n")
        for scenario in SCENARIOS:
            wrk_many(servers, scenario, files, min(2, per), 1.0)  # warm-up
            for s in servers:
                httpbench.wait_idle(s.proc.pid, limit=5.0)
            before, cpu0 = backend.snapshot(), sum(httpbench.tree_cpu(s.proc.pid) for s in servers)
            r = wrk_many(servers, scenario, files, per, args.duration)
            for s in servers:
                httpbench.wait_idle(s.proc.pid, limit=5.0)
            cpu1 = sum(httpbench.tree_cpu(s.proc.pid) for s in servers)
            after = backend.snapshot()
            reqs = max(1, r["requests"])
            m = Measurement(store, n, scenario, r["rps"], r["p50_ms"], r["p99_ms"], r["requests"], r["errors"],
                            (cpu1 - cpu0) * 1000 / reqs, (after["cpu"] - before["cpu"]) * 1e6 / reqs)  # fmt: skip
            if store == "redis":
                m.ops, m.redis_usec = delta_redis(before, after, reqs)
            else:
                m.ops = delta_pg(before, after, reqs)
            log(f"  {store:8s} x{n} {scenario:4s} {m.rps:8.0f} req/s  p99 {m.p99_ms:6.1f} ms  errors {m.errors}"
                f"  huihua {m.huihua_cpu_ms:.2f} ms/req  store {m.store_cpu_us:.0f} µs/req  ops {m.ops}")  # fmt: skip
            out.append(m)
    return out


def redis_benchmark(port: int) -> dict[str, float]:
    """Requests per second the Redis server manages for simple commands, one at a time per client."""
    run = subprocess.run(["redis-benchmark", "-p", str(port), "-q", "-n", "100000", "-c", "32", "-t", "get,set,hset",
                          "--csv"], capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    rates = {}
    for line in run.stdout.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if len(cells) >= 2 and cells[0] in ("GET", "SET", "HSET"):
            rates[cells[0]] = float(cells[1])
    return rates


# -- the report ----------------------------------------------------------------------------------
def render(ms: list[Measurement], bench: dict[str, float], info: dict[str, str], args: argparse.Namespace,
           started: datetime, elapsed: float) -> str:  # fmt: skip
    def get(store: str, n: int, scenario: str) -> Measurement:
        return next(m for m in ms if (m.store, m.processes, m.scenario) == (store, n, scenario))

    lines = [
        "# Capacity: processes, Redis shards, PostgreSQL servers",
        "",
        f"Generated by `bench/scale.py` on {started:%Y-%m-%d %H:%M} UTC in {elapsed:.0f} s "
        f"({args.duration:.0f} s per measurement, {args.connections} connections, one logged-in session each).",
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), load average {info['load']} at the start, shared "
        "with other work: absolute numbers are this machine's; the per-request costs are what carry over "
        "(on this shared machine they varied by up to 2x between runs: re-run on yours before sizing).",
        f"huihua {info['commit']}; Redis {info['redis']} started by the run on loopback (no persistence); "
        "PostgreSQL on 127.0.0.1 (`synchronous_commit=on`), database `huihua_bench_scale`. "
        "With Redis the accounts are on a local SQLite file; with PostgreSQL both are in PostgreSQL.",
        "",
        "## Measured",
        "",
        "| store | processes | request | req/s | p50 ms | p99 ms | errors | huihua CPU ms/req | store CPU µs/req | store operations per request |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in ms:
        if m.redis_usec is not None:
            top = ", ".join(f"{k.upper()} {v:.2f}" for k, v in sorted(m.ops.items()) if k in SCRIPTS)
            inner = ", ".join(
                f"{k} {v:.2f}" for k, v in sorted(m.ops.items()) if k not in SCRIPTS and v >= 0.005
            )
            ops = f"{top} ({m.redis_usec:.0f} µs inside them), running {inner}"
        else:
            ops = ", ".join(f"{k} {v:.2f}" for k, v in m.ops.items() if v >= 0.005)
        lines.append(f"| {m.store} | {m.processes} | {httpbench.SCENARIO_TITLES[m.scenario]} | {m.rps:.0f} | {m.p50_ms:.1f} "
                     f"| {m.p99_ms:.1f} | {m.errors} | {m.huihua_cpu_ms:.2f} | {m.store_cpu_us:.0f} | {ops} |")  # fmt: skip
    bench_text = ", ".join(f"{k} {v:,.0f}/s" for k, v in bench.items())
    lines += ["", f"`redis-benchmark` on the same Redis (32 clients, no pipelining): {bench_text}.", ""]

    # the model: per-request costs from the 2-process runs (the store under the most load)
    me_r, incr_r = get("redis", 2, "me"), get("redis", 2, "incr")
    me_p, incr_p = get("postgres", 2, "me"), get("postgres", 2, "incr")
    simple = min(bench.values()) if bench else 0.0

    def per_core(us: float) -> float:
        return 1e6 / us if us > 0 else float("inf")

    def redis_ops(m: Measurement) -> float:
        return sum(v for k, v in m.ops.items() if k in SCRIPTS)

    mix = 0.9  # reads in the worked example
    red_us = mix * me_r.store_cpu_us + (1 - mix) * incr_r.store_cpu_us
    pg_us = mix * me_p.store_cpu_us + (1 - mix) * incr_p.store_cpu_us
    hh_ms = mix * me_r.huihua_cpu_ms + (1 - mix) * incr_r.huihua_cpu_ms
    hh_pg_ms = mix * me_p.huihua_cpu_ms + (1 - mix) * incr_p.huihua_cpu_ms

    def written(m: Measurement) -> float:
        return m.ops["inserted"] + m.ops["updated"] + m.ops["deleted"]

    flushes = mix * written(me_p) + (1 - mix) * written(incr_p)
    load = 20_000
    headroom = 0.6  # plan every process and server at 60% of a core
    shard_rps = per_core(red_us) * headroom
    proc_rps = 1000 / hh_ms * headroom
    proc_pg_rps = 1000 / hh_pg_ms * headroom
    pg_core_rps = per_core(pg_us) * headroom
    lines += [
        "## The model",
        "",
        "A request costs CPU in the huihua process and work in the store; both scale out separately. "
        "From the 2-process runs (the store under the most load):",
        "",
        "| per request | GET /v1/auth/me | PATCH incr |",
        "|---|---|---|",
        f"| huihua CPU (ms) | {me_r.huihua_cpu_ms:.2f} (Redis) / {me_p.huihua_cpu_ms:.2f} (PostgreSQL) "
        f"| {incr_r.huihua_cpu_ms:.2f} / {incr_p.huihua_cpu_ms:.2f} |",
        f"| Redis round trips (Lua scripts) | {redis_ops(me_r):.2f} | {redis_ops(incr_r):.2f} |",
        f"| Redis commands run inside them | {sum(me_r.ops.values()) - redis_ops(me_r):.2f} "
        f"| {sum(incr_r.ops.values()) - redis_ops(incr_r):.2f} |",
        f"| redis-server CPU (µs) | {me_r.store_cpu_us:.0f} | {incr_r.store_cpu_us:.0f} |",
        f"| PostgreSQL commits | {me_p.ops['commits']:.2f} | {incr_p.ops['commits']:.2f} |",
        f"| PostgreSQL rows read / written | {me_p.ops['fetched']:.1f} / "
        f"{me_p.ops['inserted'] + me_p.ops['updated'] + me_p.ops['deleted']:.2f} "
        f"| {incr_p.ops['fetched']:.1f} / {incr_p.ops['inserted'] + incr_p.ops['updated'] + incr_p.ops['deleted']:.2f} |",
        f"| PostgreSQL backend CPU (µs) | {me_p.store_cpu_us:.0f} | {incr_p.store_cpu_us:.0f} |",
        "",
        "Capacity of one unit at 100% of a core (requests/s = 1 / CPU per request):",
        "",
        f"- **One huihua process** (one core): GET /me {1000 / me_r.huihua_cpu_ms:,.0f}/s, "
        f"PATCH incr {1000 / incr_r.huihua_cpu_ms:,.0f}/s. huihua is the first thing to saturate: "
        "add processes (more `huihua@PORT` instances or machines behind nginx) up to the cores you have.",
        f"- **One Redis shard** (Redis runs commands on one core): GET /me {per_core(me_r.store_cpu_us):,.0f}/s, "
        f"PATCH incr {per_core(incr_r.store_cpu_us):,.0f}/s from the measured redis-server CPU. "
        f"Cross-check from operation counts: `redis-benchmark` manages ~{simple:,.0f} simple commands/s, "
        f"so ~{simple / max(redis_ops(me_r), 0.01):,.0f} /me/s at {redis_ops(me_r):.2f} round trips each "
        "(optimistic: each is a Lua script running several commands, dearer than one GET).",
        f"- **One PostgreSQL core**: GET /me {per_core(me_p.store_cpu_us):,.0f}/s, PATCH incr "
        f"{per_core(incr_p.store_cpu_us):,.0f}/s of backend CPU; PostgreSQL spreads over its cores "
        f"(one backend per pooled connection), so a server with K cores gives about K times that, until "
        f"the WAL flush bounds the writes: a request commits {me_p.ops['commits']:.2f} (GET) or "
        f"{incr_p.ops['commits']:.2f} (PATCH) times, but a read-only commit writes no WAL, so only about one "
        "flush per row written counts (group commit batches concurrent ones). "
        f"So one PostgreSQL server with 8 cores at {headroom:.0%} carries about {8 * pg_core_rps:,.0f} req/s of "
        f"this mix, one Redis shard at {headroom:.0%} about {shard_rps:,.0f}.",
        "",
        "## Worked example",
        "",
        f"{load:,} requests/s, {mix:.0%} GET /v1/auth/me and {1 - mix:.0%} PATCH /v1/session/data, every "
        f"unit planned at {headroom:.0%} of a core (room for bursts, logins, the sweeper):",
        "",
        f"- huihua: {hh_ms:.2f} ms of CPU per request → {proc_rps:,.0f} req/s per process → "
        f"**{-(-load // int(proc_rps)) if proc_rps else '?'} processes** (e.g. "
        f"{-(-(-(-load // int(proc_rps))) // 4) if proc_rps else '?'} machines with 4 cores, `huihua@8600`…`@8603`); "
        f"with PostgreSQL as the session store huihua works harder ({hh_pg_ms:.2f} ms → "
        f"**{-(-load // int(proc_pg_rps)) if proc_pg_rps else '?'} processes**).",
        f"- Redis: {red_us:.0f} µs of Redis CPU per request → {shard_rps:,.0f} req/s per shard → "
        f"**{-(-load // int(shard_rps)) if shard_rps else '?'} shard(s)** (Redis Cluster hashes each user's keys "
        "to one slot, so shards add capacity about linearly); a replica per shard is for failover, not capacity.",
        f"- or PostgreSQL: {pg_us:.0f} µs of backend CPU per request → "
        f"{pg_core_rps:,.0f} req/s per core → **{-(-load // int(pg_core_rps)) if pg_core_rps else '?'} cores** of "
        f"PostgreSQL, and about {flushes * load:,.0f} writing commits/s ({flushes:.2f} rows written per "
        "request): measure what your server's WAL sustains "
        "(`pgbench -N`) before counting on it. One PostgreSQL server does not shard: past it, use Redis.",
        "",
        "Logins are different: `POST /v1/auth/login` is argon2id-bound (about 50 ms of CPU each, "
        "results/http.md), so one core verifies about 20 passwords a second: size login bursts separately "
        "(WeChat logins cost no hash, see results/wechat.md).",
        "",
        "Re-run on your hardware: `uv run python bench/scale.py` (needs wrk, redis-server, "
        "redis-benchmark and the local PostgreSQL; about four minutes).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=6.0, help="seconds per measurement")
    ap.add_argument("--connections", type=int, default=16, help="connections (sessions) in all")
    ap.add_argument("--output", type=Path, default=RESULTS, help="where to write the report, or - for stdout")
    args = ap.parse_args(argv)
    for tool in ("wrk", "redis-server", "redis-benchmark"):
        if shutil.which(tool) is None:
            sys.exit(
                f"error: {tool} is not installed (Debian: apt-get install -y wrk redis-server redis-tools)"
            )
    started, t0 = datetime.now(UTC), time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="huihua-bench-scale-"))
    redis_server = RedisServer(folder)
    info = httpbench.machine_info()
    info["redis"] = str(redis_server.client.info("server")["redis_version"])
    measurements: list[Measurement] = []
    try:
        stores = {"redis": redis_server, "postgres": PostgresDatabase()}
        urls = {"redis": redis_server.url, "postgres": stores["postgres"].url}
        for store in ("redis", "postgres"):
            for n in (1, 2):
                log(f"{store}, {n} process(es)")
                measurements += measure_config(store, n, urls[store], stores, folder, args)
        redis_server.reset()
        bench = redis_benchmark(redis_server.port)
        stores["postgres"].reset()
    finally:
        redis_server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    text = render(measurements, bench, info, args, started, time.monotonic() - t0)
    if str(args.output) == "-":
        print(text)
    else:
        args.output.write_text(text)
        log(f"wrote {args.output}")
    print(json.dumps([m.__dict__ for m in measurements]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
