"""One harness for the store contract suite: every store, sync and async, through one facade.

A test gets `h` (a `Harness`) and drives `h.m`, a session manager whose methods it calls as if they
were synchronous. In the async flavour the facade runs the `AsyncSessionManager`'s coroutines on an
event loop in a background thread, so one test body covers both twins, and `h.parallel` (threads
calling the facade) becomes concurrent tasks on that loop. `h.backend` looks at what is stored with
its own plain connection, never through the store under test.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from huihua.core.async_manager import AsyncSessionManager
from huihua.core.clock import FakeClock
from huihua.core.data import dumps
from huihua.core.manager import SessionManager
from huihua.stores.inline import InlineAsyncStore
from huihua.stores.memory import MemoryStore
from huihua.stores.sqlite import SQLiteStore

KINDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", id="redis"),
    pytest.param("postgres", id="postgres"),
    pytest.param("redis-cluster", id="redis-cluster"),
    pytest.param("redis-sentinel", id="redis-sentinel"),
]
REDIS_KINDS = ("redis", "redis-cluster", "redis-sentinel")
PERSISTENT = KINDS[1:]
FLAVOURS = [pytest.param("sync", id="sync"), pytest.param("async", id="async")]


class Runner:
    """Calls that may return coroutines, made synchronous; and parallel workers."""

    def __init__(self, flavour: str) -> None:
        self.flavour = flavour
        self.loop: asyncio.AbstractEventLoop | None = None
        if flavour == "async":
            self.loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
            self._thread.start()

    def __call__(self, value: Any) -> Any:
        if inspect.isawaitable(value):
            assert self.loop is not None, "a coroutine in the sync flavour"

            async def wait() -> Any:
                return await value

            return asyncio.run_coroutine_threadsafe(wait(), self.loop).result(timeout=120)
        return value

    def parallel(self, fns: Sequence[Callable[[], Any]], workers: int = 16) -> list[Any]:
        """Run every fn at once (threads; in the async flavour their coroutines interleave as
        tasks on the one loop). Results in order; an exception is returned, not raised."""
        barrier = threading.Barrier(min(workers, len(fns)))

        def call(fn: Callable[[], Any], i: int) -> Any:
            if i < barrier.parties:
                barrier.wait(timeout=30)
            try:
                return fn()
            except Exception as exc:
                return exc

        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(call, fns, range(len(fns))))

    def close(self) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
            self.loop.close()


class Facade:
    """Any object whose methods may be coroutines, seen with synchronous methods."""

    def __init__(self, target: Any, run: Runner) -> None:
        self._target = target
        self._run = run

    @property
    def raw(self) -> Any:
        return self._target

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._run(value(*args, **kwargs))

        return call


class Spy:
    """A store wrapper that records every method called on it."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._store, name)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return value(*args, **kwargs)

        return call

    @property
    def writes(self) -> list[str]:
        return [c for c in self.calls if c not in ("get", "list_user", "count", "kv_get", "ping")]


# -- direct inspection of what a store keeps ------------------------------------------------------
class Backend:
    kind = ""

    def strings(self) -> list[str]:
        """Every key, field and value stored, as text."""
        raise NotImplementedError

    def sessions(self) -> int:
        """Session records stored (tombstones and expired ones included)."""
        raise NotImplementedError

    def corrupt(self, key: str, how: str) -> None:
        raise NotImplementedError

    def lose_index(self, user_id: str) -> None:
        """Forget which sessions `user_id` has, behind the store's back (Redis: evicted). SQL
        stores have no index apart from the rows: nothing to lose there."""

    def undo_tombstones(self, user_id: str) -> None:
        """Make the user's tombstones look live again, as if a revocation had missed them: only
        the epoch can still tell they are dead."""
        raise NotImplementedError

    def close(self) -> None:
        return None


class MemoryBackend(Backend):
    kind = "memory"

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def strings(self) -> list[str]:
        out: list[str] = []
        for key, r in self.store._sessions.items():
            out += [key, r.id, str(r.user_id), str(r.ip), str(r.user_agent), dumps(dict(r.data))]
        for user, index in self.store._users.items():
            out += [user, *index, *index.values()]
        for key, (value, _) in self.store._kv.items():
            out += [key, value]
        return out

    def sessions(self) -> int:
        return len(self.store._sessions)

    def lose_index(self, user_id: str) -> None:
        self.store._users.pop(user_id, None)

    def undo_tombstones(self, user_id: str) -> None:
        for key, r in list(self.store._sessions.items()):
            if r.user_id == user_id:
                self.store._sessions[key] = replace(r, revoked_at=None)


class SQLiteBackend(Backend):
    kind = "sqlite"

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    def strings(self) -> list[str]:
        out: list[str] = []
        for table in ("huihua_session", "huihua_kv"):
            for row in self.db.execute(f"SELECT * FROM {table}"):
                out += [str(v) for v in row]
        return out

    def sessions(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM huihua_session").fetchone()[0])

    def corrupt(self, key: str, how: str) -> None:
        value = {"json": '{"a": 1, "b": [', "shape": "[1, 2, 3]"}[how]
        self.db.execute("UPDATE huihua_session SET data = ? WHERE key = ?", (value, key))

    def undo_tombstones(self, user_id: str) -> None:
        self.db.execute("UPDATE huihua_session SET revoked_at = NULL WHERE user_id = ?", (user_id,))

    def close(self) -> None:
        self.db.close()


class RedisBackend(Backend):
    kind = "redis"

    def __init__(self, url: str) -> None:
        import redis
        import redis.cluster
        import redis.sentinel

        from huihua.stores.redis_urls import parse_cluster_url, parse_sentinel_url

        self.r: Any
        if url.startswith("redis+cluster://"):  # key commands go to the key's shard, SCAN to all
            nodes = [redis.cluster.ClusterNode(h, p) for h, p in parse_cluster_url(url).hosts]
            self.r = redis.cluster.RedisCluster(startup_nodes=nodes)
        elif url.startswith("redis+sentinel://"):
            where = parse_sentinel_url(url)
            assert where.master is not None
            sentinel = redis.sentinel.Sentinel(list(where.hosts))
            self.r = sentinel.master_for(where.master, db=where.db)
        else:
            self.r = redis.Redis.from_url(url)

    def all_keys(self) -> list[str]:
        return [k.decode() for k in self.r.scan_iter(count=1000)]

    def strings(self) -> list[str]:
        out: list[str] = []
        for key in self.all_keys():
            out.append(key)
            assert self.r.type(key) == b"hash", key
            for f, v in self.r.hgetall(key).items():
                out += [f.decode(), v.decode()]
        return out

    def sessions(self) -> int:
        return sum(1 for k in self.all_keys() if k.startswith("hh:s:"))

    def lose_index(self, user_id: str) -> None:
        from huihua.stores.redis import RedisBase

        assert self.r.delete(RedisBase.index_key(user_id)) == 1

    def undo_tombstones(self, user_id: str) -> None:
        for key in self.all_keys():
            if key.startswith("hh:s:") and self.r.hget(key, "user") == user_id.encode():
                self.r.hdel(key, "revoked")

    def immortal(self) -> list[tuple[str, int]]:
        """Keys without a positive TTL."""
        return [(k, t) for k in self.all_keys() if (t := self.r.ttl(k)) <= 0]

    def corrupt(self, key: str, how: str) -> None:
        hexpart, tag = key[5:], key[:4]
        if how == "json":
            self.r.hset(f"hh:d:{{{tag}}}{hexpart}", "a", '{"a": 1, "b": [')
        else:  # a meta field that is not what it should be
            self.r.hset(f"hh:s:{{{tag}}}{hexpart}", "ver", "not a number")

    def close(self) -> None:
        self.r.close()


class PostgresBackend(Backend):
    kind = "postgres"

    def __init__(self, url: str) -> None:
        import psycopg

        self.db = psycopg.connect(url, autocommit=True)

    def strings(self) -> list[str]:
        out: list[str] = []
        for table in ("huihua_session", "huihua_kv"):
            for row in self.db.execute(f"SELECT * FROM {table}"):
                out += [str(v) for v in row]
        return out

    def sessions(self) -> int:
        row = self.db.execute("SELECT count(*) FROM huihua_session").fetchone()
        assert row is not None
        return int(row[0])

    def corrupt(self, key: str, how: str) -> None:
        value = {"json": '{"a": 1, "b": [', "shape": "[1, 2, 3]"}[how]
        self.db.execute("UPDATE huihua_session SET data = %s WHERE key = %s", (value, key))

    def undo_tombstones(self, user_id: str) -> None:
        self.db.execute("UPDATE huihua_session SET revoked_at = NULL WHERE user_id = %s", (user_id,))

    def close(self) -> None:
        self.db.close()


# -- the harness ----------------------------------------------------------------------------------
@dataclass
class Harness:
    kind: str
    flavour: str
    clock: FakeClock
    run: Runner
    backend: Backend
    make_raw: Callable[..., Any]  # a new store on the same backend
    spy: Spy = field(init=False)
    m: Any = field(init=False)  # the facade over the manager under test
    store: Facade = field(init=False)  # the facade over the (spied) store
    _opened: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.spy = Spy(self.new_raw_store())
        self.store = Facade(self.spy, self.run)
        self.m = self.manager(self.spy)

    def new_raw_store(self, **options: Any) -> Any:
        store = self.make_raw(**options)
        self._opened.append(store)
        return store

    def manager(self, store: Any = None, **options: Any) -> Any:
        cls = AsyncSessionManager if self.flavour == "async" else SessionManager
        options.setdefault("clock", self.clock)
        options.setdefault("events", ())
        raw = cls(store if store is not None else self.new_raw_store(), **options)
        return Facade(raw, self.run)

    def parallel(self, fns: Sequence[Callable[[], Any]], workers: int = 16) -> list[Any]:
        return self.run.parallel(fns, workers)

    def wait(self, value: Any) -> Any:
        return self.run(value)

    def close(self) -> None:
        for store in self._opened:
            self.run(store.close())
        self.run.close()
        self.backend.close()


def _factory(kind: str, flavour: str, request: pytest.FixtureRequest) -> tuple[Backend, Callable[..., Any]]:
    if kind == "memory":
        memory = MemoryStore()

        def make_memory(**_: Any) -> Any:
            return InlineAsyncStore(memory) if flavour == "async" else memory

        return MemoryBackend(memory), make_memory
    if kind == "sqlite":
        path = os.path.join(str(request.getfixturevalue("tmp_path")), "huihua.db")

        def make_sqlite(**_: Any) -> Any:
            if flavour == "async":
                return InlineAsyncStore(SQLiteStore(path, raise_busy=True))
            return SQLiteStore(path)

        make_sqlite()  # the schema exists before the backend looks
        return SQLiteBackend(path), make_sqlite
    if kind in REDIS_KINDS:
        from huihua.stores import async_store_from_url, store_from_url

        url = request.getfixturevalue(kind.replace("-", "_") + "_url")

        def make_redis(**options: Any) -> Any:
            if options:  # the store's own constructor, for its pool and connection options
                return _redis_class(kind, flavour).from_url(url, **options)
            return async_store_from_url(url) if flavour == "async" else store_from_url(url)

        return RedisBackend(url), make_redis
    from huihua.stores.postgres import AsyncPostgresStore, PostgresStore

    url = request.getfixturevalue("postgres_url")

    def make_postgres(**options: Any) -> Any:
        options.setdefault("timeout", 10.0)  # two shared cores: generous, but never a hang
        return (AsyncPostgresStore if flavour == "async" else PostgresStore).from_url(url, **options)

    first = PostgresStore.from_url(url)
    first.ping()  # creates the tables before the backend looks
    first.close()
    return PostgresBackend(url), make_postgres


def _redis_class(kind: str, flavour: str) -> Any:
    from huihua.stores import redis, redis_cluster, redis_sentinel

    module: Any = {"redis": redis, "redis-cluster": redis_cluster, "redis-sentinel": redis_sentinel}[kind]
    name = {
        "redis": "RedisStore",
        "redis-cluster": "RedisClusterStore",
        "redis-sentinel": "RedisSentinelStore",
    }
    return getattr(module, ("Async" if flavour == "async" else "") + name[kind])


def make_harness(kind: str, flavour: str, request: pytest.FixtureRequest) -> Iterator[Harness]:
    backend, make = _factory(kind, flavour, request)
    h = Harness(kind, flavour, request.getfixturevalue("clock"), Runner(flavour), backend, make)
    try:
        yield h
    finally:
        h.close()


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def h(kind: str, flavour: str, request: pytest.FixtureRequest) -> Iterator[Harness]:
    yield from make_harness(kind, flavour, request)
