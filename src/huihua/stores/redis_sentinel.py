"""The Redis store behind Redis Sentinel: `redis+sentinel://host:port[,host:port...]/MASTER/DB`.

The client asks the sentinels where the master is when it connects; a connection that finds its
server demoted (READONLY) is dropped and the next one asks again, so a failover costs some 503s
and no restart. The pool is the plain store's: bounded, waiting `pool_timeout` when full. No
command is retried (a retried script could apply twice).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel

from .redis import _NO_RETRY, AsyncRedisStore, RedisStore, _pool_options
from .redis_urls import RedisTopology, parse_sentinel_url


def _replica_policy(pool: redis.sentinel.SentinelConnectionPool, host: str, port: int) -> Mapping[Any, Any]:
    """A replica's `maxmemory-policy`, over a connection of its own with the master's options."""
    options = {k: v for k, v in pool.connection_kwargs.items() if k != "connection_pool"}
    tls = issubclass(pool.connection_class, redis.SSLConnection)
    connection_class = redis.SSLConnection if tls else redis.Connection
    client = redis.Redis(
        connection_pool=redis.ConnectionPool(
            connection_class=connection_class, host=host, port=port, **options
        )
    )
    try:
        reply: Mapping[Any, Any] = client.config_get("maxmemory-policy")  # type: ignore[assignment]  # sync client
        return reply
    finally:
        client.close()
        client.connection_pool.disconnect()


class _BlockingSentinelPool(redis.sentinel.SentinelConnectionPool, redis.BlockingConnectionPool):
    """Sentinel's master discovery with the blocking pool's bound (waits, then 503)."""


class _AsyncBlockingSentinelPool(
    redis.asyncio.sentinel.SentinelConnectionPool, redis.asyncio.BlockingConnectionPool
):
    pass


def _split_options(
    topology: RedisTopology, max_connections: int, socket_timeout: float, connect_timeout: float,
    pool_timeout: float,
) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """(the sentinels' connection options, the master's)."""
    sentinels = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        "retry": _NO_RETRY,
    }
    master = _pool_options(max_connections, socket_timeout, connect_timeout, pool_timeout)
    master.update(username=topology.username, password=topology.password, db=topology.db)
    return sentinels, master


class RedisSentinelStore(RedisStore):
    """The synchronous twin: a redis.Redis on the master that the sentinels name."""

    sentinel: redis.sentinel.Sentinel

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        max_connections: int = 50,
        socket_timeout: float = 2.0,
        connect_timeout: float = 1.0,
        pool_timeout: float = 1.0,
        **connection_options: Any,
    ) -> RedisSentinelStore:
        topology = parse_sentinel_url(url)
        assert topology.master is not None
        sentinels, master = _split_options(
            topology, max_connections, socket_timeout, connect_timeout, pool_timeout
        )
        sentinel = redis.sentinel.Sentinel(list(topology.hosts), sentinel_kwargs=sentinels)  # type: ignore[no-untyped-call]
        client = sentinel.master_for(  # type: ignore[no-untyped-call]
            topology.master, connection_pool_class=_BlockingSentinelPool, **master, **connection_options
        )
        store = cls(client)
        store.sentinel = sentinel
        return store

    TOPOLOGY = True

    def policy_nodes(self) -> list[tuple[str, Callable[[], Mapping[Any, Any]]]]:
        """The master the store's client reaches (read through that client), then each replica
        the sentinels consider alive: a failover promotes one, and with it its own policy."""
        pool = self.client.connection_pool
        assert isinstance(pool, redis.sentinel.SentinelConnectionPool)
        host, port = pool.get_master_address()  # type: ignore[no-untyped-call]
        nodes: list[tuple[str, Callable[[], Mapping[Any, Any]]]] = [(f"{host}:{port} (master)", self._policy)]
        for replica in self.sentinel.discover_slaves(pool.service_name):  # type: ignore[no-untyped-call]
            name = f"{replica[0]}:{replica[1]} (replica)"
            nodes.append((name, partial(_replica_policy, pool, replica[0], replica[1])))
        return nodes

    def close(self) -> None:
        super().close()
        for s in self.sentinel.sentinels:
            s.close()


class AsyncRedisSentinelStore(AsyncRedisStore):
    """The asynchronous twin, over redis.asyncio's Sentinel."""

    sentinel: redis.asyncio.sentinel.Sentinel

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        max_connections: int = 50,
        socket_timeout: float = 2.0,
        connect_timeout: float = 1.0,
        pool_timeout: float = 1.0,
        **connection_options: Any,
    ) -> AsyncRedisSentinelStore:
        topology = parse_sentinel_url(url)
        assert topology.master is not None
        sentinels, master = _split_options(
            topology, max_connections, socket_timeout, connect_timeout, pool_timeout
        )
        sentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            list(topology.hosts), sentinel_kwargs=sentinels
        )
        client = sentinel.master_for(
            topology.master, connection_pool_class=_AsyncBlockingSentinelPool, **master, **connection_options
        )
        store = cls(client)
        store.sentinel = sentinel
        return store

    async def close(self) -> None:
        await super().close()
        for s in self.sentinel.sentinels:
            await s.aclose()
