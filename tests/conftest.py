"""Fixtures shared by every test: a fake clock, and the real Redis and PostgreSQL.

Redis and PostgreSQL are never mocked and never skipped: when one is down the test errors,
with what to run. `scripts/services` starts both. A Redis Cluster (3 masters, 3 replicas) and a
Sentinel group (master, replica, 3 sentinels) are started once per session, on free loopback
ports, by the first test that needs them (tests/redis_servers.py), and stopped at the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from huihua.core.clock import FakeClock
from redis_servers import Cluster, SentinelGroup

REDIS_URL = os.environ.get("HUIHUA_TEST_REDIS", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get("HUIHUA_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/huihua_test")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A clean Redis database (15) for one test."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL} ({exc}); run scripts/services")
    yield REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture
def postgres_url() -> str:
    """A PostgreSQL database with no huihua tables, for one test."""
    import psycopg

    try:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS huihua_session, huihua_kv, huihua_user, huihua_user_mark,"
                         " huihua_wechat_identity, huihua_throttle CASCADE")  # fmt: skip
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL} ({exc}); run scripts/services")
    return POSTGRES_URL


@pytest.fixture
def sqlite_url(tmp_path: os.PathLike[str]) -> str:
    return f"sqlite:///{os.fspath(tmp_path)}/huihua.db"


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One real Redis Cluster for the session. A test that kills a node calls `heal()` after."""
    cluster = Cluster(Path(tmp_path_factory.mktemp("redis-cluster")))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture
def redis_cluster_url(redis_cluster: Cluster) -> Iterator[str]:
    """The cluster, emptied, for one test."""
    redis_cluster.heal()
    redis_cluster.flush()
    yield redis_cluster.url
    redis_cluster.flush()


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    group = SentinelGroup(Path(tmp_path_factory.mktemp("redis-sentinel")))
    try:
        yield group.start()
    finally:
        group.stop()


@pytest.fixture
def redis_sentinel_url(redis_sentinel: SentinelGroup) -> Iterator[str]:
    """The sentinel group's master, emptied, for one test."""
    redis_sentinel.flush()
    yield redis_sentinel.url()
    redis_sentinel.flush()
