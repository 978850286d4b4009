"""What only the Redis Cluster and Sentinel URLs promise: strict parsing, masked passwords,
503 rather than a hang when nothing answers, and a bounded cluster client."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from click.testing import CliRunner

from huihua.cli import main
from huihua.core.errors import StoreUnavailable
from huihua.core.manager import SessionManager
from huihua.stores import async_store_from_url, store_from_url
from huihua.stores.redis_cluster import AsyncRedisClusterStore, RedisClusterStore

from .conftest import Runner

MALFORMED = [
    "redis+cluster://",  # no node
    "redis+cluster://127.0.0.1/",  # no port
    "redis+cluster://127.0.0.1:7000,/",  # an empty node
    "redis+cluster://127.0.0.1:70000/",  # not a port
    "redis+cluster://127.0.0.1:7000/3",  # a cluster has one database
    "redis+cluster://127.0.0.1:7000/?ssl=1",  # no options
    "redis+sentinel://127.0.0.1:26379",  # no master name
    "redis+sentinel://127.0.0.1:26379/",  # no master name
    "redis+sentinel://127.0.0.1:26379/main/zero",  # not a database number
    "redis+sentinel://127.0.0.1:26379/main/0/1",  # too much path
    "redis+sentinel://127.0.0.1:26379/ma in/0",  # not a name
]


@pytest.mark.parametrize("url", MALFORMED)
def test_a_malformed_url_is_refused_naming_the_setting(url: str) -> None:
    secret_url = url.replace("://", "://:hunter2secret@", 1)
    for make in (store_from_url, async_store_from_url):
        with pytest.raises(ValueError, match="HUIHUA_STORE") as refused:
            make(secret_url)
        assert "hunter2secret" not in str(refused.value)


def test_doctor_names_the_setting_and_masks_the_password(tmp_path: Any) -> None:
    env = {"HUIHUA_STORE": "redis+sentinel://:hunter2secret@127.0.0.1:1/", "HUIHUA_CONFIG": "",
           "HUIHUA_DATABASE": f"sqlite:///{tmp_path}/a.db", "NO_COLOR": "1", "COLUMNS": "200"}  # fmt: skip
    result = CliRunner(env=env).invoke(main, ["doctor"], catch_exceptions=False)
    assert result.exit_code == 1
    assert "HUIHUA_STORE 'redis+sentinel://:***@127.0.0.1:1/' is not a valid store URL" in result.stderr
    assert "hunter2secret" not in result.output


@pytest.mark.parametrize(
    "url", ["redis+cluster://127.0.0.1:1,127.0.0.1:2/", "redis+sentinel://127.0.0.1:1/main/0"]
)
@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_nothing_listening_is_unavailable_fast(url: str, flavour: str) -> None:
    run = Runner(flavour)

    def attempt() -> None:  # the sync cluster client reads the slot map when it is made
        store = async_store_from_url(url) if flavour == "async" else store_from_url(url)
        try:
            run(store.ping())
        finally:
            run(store.close())

    started = time.monotonic()
    try:
        with pytest.raises(StoreUnavailable):
            attempt()
    finally:
        run.close()
    assert time.monotonic() - started < 5


def test_a_saturated_cluster_client_answers_unavailable_fast(redis_cluster_url: str) -> None:
    store = RedisClusterStore.from_url(redis_cluster_url, max_connections=1, pool_timeout=0.3)
    m = SessionManager(store, events=())
    try:
        s = m.create()
        assert store._calls.acquire(timeout=1)  # another call holds the only place
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="busy"):
            m.load(s.token or "")
        assert time.monotonic() - started < 2
        store._calls.release()
        assert m.load(s.token or "").id == s.id
    finally:
        store.close()


def test_connections_closed_under_concurrent_callers_answer_unavailable(redis_cluster_url: str) -> None:
    """On CLUSTERDOWN redis-py closes every connection of the client while other callers use
    them (reproduced in a failover under load: an AttributeError, a 500). Closing the client the
    same way, over and over, under 30 callers: each call succeeds or is StoreUnavailable."""
    outcomes: dict[str, int] = {}

    async def main() -> None:
        store = AsyncRedisClusterStore.from_url(redis_cluster_url)
        stop = time.monotonic() + 2.0

        async def caller(i: int) -> None:
            n = 0
            while time.monotonic() < stop:
                n += 1
                try:
                    await store.kv_set(f"race:{i}:{n % 5}", "v", now=time.time(), ttl=60)
                    key = "ok"
                except StoreUnavailable:
                    key = "unavailable"
                except Exception as exc:  # what must not happen
                    key = type(exc).__name__
                outcomes[key] = outcomes.get(key, 0) + 1

        async def closer() -> None:  # what redis-py does on CLUSTERDOWN
            while time.monotonic() < stop:
                await asyncio.sleep(0.05)
                await store.cluster.aclose()

        try:
            await asyncio.gather(closer(), *(caller(i) for i in range(30)))
        finally:
            await store.close()

    asyncio.run(main())
    assert set(outcomes) == {"ok", "unavailable"}, outcomes  # the closes did reach callers
    assert outcomes["ok"] > 100, outcomes
