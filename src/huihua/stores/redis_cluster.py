"""The Redis store on a Redis Cluster: `redis+cluster://host:port[,host:port...]/`.

The flows, scripts and key layout are the plain Redis store's (every script touches the keys of
one `{TAG}` hash slot; the kv space is `hh:kv:{<key>}`). What a cluster changes is below:

- SCAN (purge, count) runs master by master. The flow sees one integer cursor that packs
  (master number, that master's cursor); 0 still means "start" and "done".
- A promoted replica has no scripts (Redis does not replicate its script cache): on NOSCRIPT
  the script is loaded on the node of its slot and sent again (NOSCRIPT means nothing ran).
- redis-py's cluster pipelines refuse EVALSHA, so a batch of scripts (purge) runs one script at
  a time; a batch of plain commands is still one pipeline per node.
- The async client reads the slot map before its first call (redis-py's lazy read breaks
  concurrent callers); the sync client reads it when it is made.
- redis-py's cluster pools do not wait when full, so the store bounds itself: at most
  `max_connections` calls at once (each holds at most one connection per node), the next waits
  `pool_timeout`, then answers StoreUnavailable, as the plain store's blocking pool does.
- No command is retried on a connection error (a retried script could apply twice): the
  request answers 503 and the client re-reads the slot map, so it finds a promoted replica by
  itself. MOVED, ASK and TRYAGAIN redirections are followed as redis-py does.
- On CLUSTERDOWN redis-py closes every connection of the client, also those that other callers
  are using at that moment; they fail with whatever the closed connection raises (an
  AttributeError on a writer that is gone, not a RedisError). Any exception out of the client
  during a call is therefore the store's failure (503), logged with its traceback.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from typing import Any, TypeVar, cast

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.exceptions import NoScriptError

from ..core.errors import StoreUnavailable
from . import _lua
from .redis import (
    _NO_RETRY,
    AsyncRedisStore,
    Batch,
    Eval,
    Flow,
    RedisStore,
    Scan,
    Step,
    driver_errors,
)
from .redis_layout import _as_str
from .redis_urls import RedisTopology, parse_cluster_url

T = TypeVar("T")
logger = logging.getLogger("huihua.store")
_NODE_BITS = 64  # a Redis SCAN cursor is an unsigned 64-bit number


def _options(
    topology: RedisTopology, max_connections: int, socket_timeout: float, connect_timeout: float
) -> dict[str, Any]:
    return {
        "username": topology.username,
        "password": topology.password,
        "max_connections": max_connections,  # per node
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        "retry": _NO_RETRY,
        "require_full_coverage": False,  # a down shard stops only its own slots
    }


def _busy() -> StoreUnavailable:
    return StoreUnavailable("Redis Cluster store: every connection is busy")


@contextmanager
def _client_failures() -> Iterator[None]:
    """Exceptions out of redis-py's cluster client that are not RedisErrors (a connection
    closed under a concurrent caller, see the module's docstring) become StoreUnavailable."""
    try:
        yield
    except (redis.RedisError, redis.exceptions.RedisClusterException, OSError, StoreUnavailable):
        raise  # driver_errors() maps these
    except Exception as exc:
        logger.warning("Redis Cluster client failed mid-call; answering store_unavailable", exc_info=True)
        raise StoreUnavailable(
            f"Redis Cluster store: the client failed mid-call ({type(exc).__name__})"
        ) from exc


def _split(cursor: int) -> tuple[int, int]:
    return cursor >> _NODE_BITS, cursor & ((1 << _NODE_BITS) - 1)


def _masters(nodes: list[Any]) -> list[Any]:
    return sorted(nodes, key=lambda n: (n.host, n.port))


def _has_scripts(step: Batch) -> bool:
    return any(isinstance(s, Eval) for s in step.steps)


class RedisClusterStore(RedisStore):
    """The synchronous twin, over redis.cluster.RedisCluster."""

    def __init__(
        self, client: redis.cluster.RedisCluster, *, max_calls: int = 50, pool_timeout: float = 1.0
    ) -> None:
        super().__init__(cast(redis.Redis, client))  # the same command API, one client per shard
        self.cluster = client
        self._calls = threading.BoundedSemaphore(max_calls)
        self._pool_timeout = pool_timeout

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
    ) -> RedisClusterStore:
        topology = parse_cluster_url(url)
        nodes = [redis.cluster.ClusterNode(h, p) for h, p in topology.hosts]  # type: ignore[no-untyped-call]
        options = _options(topology, max_connections, socket_timeout, connect_timeout)
        with driver_errors():  # it reads the slot map now
            client = redis.cluster.RedisCluster(startup_nodes=nodes, **options, **connection_options)
        return cls(client, max_calls=max_connections, pool_timeout=pool_timeout)

    def _run(self, flow: Flow[T]) -> T:
        if not self._calls.acquire(timeout=self._pool_timeout):
            flow.close()
            raise _busy()
        try:
            return super()._run(flow)
        finally:
            self._calls.release()

    def _step(self, step: Step) -> Any:
        with _client_failures():
            return self._call(step)

    def _call(self, step: Step) -> Any:
        if isinstance(step, Scan):
            return self._scan(step)
        if isinstance(step, Batch) and _has_scripts(step):
            return [self._call(s) for s in step.steps]
        try:
            return super()._step(step)
        except NoScriptError:  # nothing ran; a promoted replica has an empty script cache
            assert isinstance(step, Eval)
            node = self.cluster.get_node_from_key(step.keys[0])  # type: ignore[no-untyped-call]
            self.cluster.execute_command("SCRIPT", "LOAD", _lua.source(step.script), target_nodes=node)  # type: ignore[no-untyped-call]
            return super()._step(step)

    def _scan(self, step: Scan) -> tuple[int, list[bytes]]:
        masters = _masters(self.cluster.get_primaries())  # type: ignore[no-untyped-call]
        number, cursor = _split(step.cursor)
        if number >= len(masters):
            return 0, []  # the cluster shrank since the cursor was made
        node = masters[number]
        reply: Any = self.cluster.scan(cursor, match=step.match, count=step.count, target_nodes=node)
        found, keys = reply
        after = int(found[node.name])
        if after == 0:
            return ((number + 1) << _NODE_BITS if number + 1 < len(masters) else 0), list(keys)
        return (number << _NODE_BITS) | after, list(keys)

    TOPOLOGY = True

    def policy_nodes(self) -> list[tuple[str, Callable[[], Mapping[Any, Any]]]]:
        """Every master (CONFIG GET on the cluster client would go to one node only), then the
        replicas each master streams to (ROLE): a failover makes one a master, policy and all.
        (CLUSTER SLOTS, and so the client's map, leaves out a replica it does not count as
        ready; CLUSTER NODES on one node can still call a fresh replica a master.)"""
        masters = _masters(self.cluster.get_primaries())  # type: ignore[no-untyped-call]
        replicas: list[Any] = []
        for master in masters:
            try:
                role = self.cluster.execute_command("ROLE", target_nodes=master)  # type: ignore[no-untyped-call]
            except (redis.RedisError, redis.exceptions.RedisClusterException, OSError):
                continue  # the master's own check says why
            for host, port, *_ in role[2] if _as_str(role[0]) == "master" else []:
                replicas.append(redis.cluster.ClusterNode(_as_str(host), int(port), redis.cluster.REPLICA))  # type: ignore[no-untyped-call]
        return [
            (f"{node.host}:{node.port} ({role})", partial(self._config_policy, node))
            for role, nodes in (("master", masters), ("replica", _masters(replicas)))
            for node in nodes
        ]

    def _config_policy(self, node: Any) -> Mapping[Any, Any]:
        try:
            reply: Mapping[Any, Any] = self.cluster.config_get("maxmemory-policy", target_nodes=node)  # type: ignore[assignment]  # sync client
            return reply
        finally:
            if node.server_type == redis.cluster.REPLICA and node.redis_connection is not None:
                node.redis_connection.close()  # a connection of its own, outside the client's map
                node.redis_connection.connection_pool.disconnect()

    def close(self) -> None:
        self.cluster.close()


class AsyncRedisClusterStore(AsyncRedisStore):
    """The asynchronous twin, over redis.asyncio.cluster.RedisCluster."""

    def __init__(
        self, client: redis.asyncio.cluster.RedisCluster, *, max_calls: int = 50, pool_timeout: float = 1.0
    ) -> None:
        super().__init__(cast(redis.asyncio.Redis, client))
        self.cluster = client
        self._calls = asyncio.BoundedSemaphore(max_calls)
        self._pool_timeout = pool_timeout
        self._ready = False
        self._starting = asyncio.Lock()

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
    ) -> AsyncRedisClusterStore:
        topology = parse_cluster_url(url)
        nodes = [redis.asyncio.cluster.ClusterNode(host, port) for host, port in topology.hosts]
        options = _options(topology, max_connections, socket_timeout, connect_timeout)
        client = redis.asyncio.cluster.RedisCluster(startup_nodes=nodes, **options, **connection_options)
        return cls(client, max_calls=max_connections, pool_timeout=pool_timeout)

    async def _run(self, flow: Flow[T]) -> T:
        try:
            if not self._ready:  # before taking a place: the first read of the slot map is no
                await self._start()  # call, and callers queued behind it must not time out on it
            await asyncio.wait_for(self._calls.acquire(), self._pool_timeout)
        except TimeoutError:
            flow.close()
            raise _busy() from None
        except BaseException:
            flow.close()
            raise
        try:
            return await super()._run(flow)
        finally:
            self._calls.release()

    async def _start(self) -> None:
        """Read the slot map once before the first call: redis-py's lazy first read breaks the
        connections of concurrent callers."""
        async with self._starting:
            if not self._ready:
                with driver_errors():
                    await self.cluster.initialize()
                self._ready = True

    async def _step(self, step: Step) -> Any:
        with _client_failures():
            return await self._call(step)

    async def _call(self, step: Step) -> Any:
        if isinstance(step, Scan):
            return await self._scan(step)
        if isinstance(step, Batch) and _has_scripts(step):
            return [await self._call(s) for s in step.steps]
        try:
            return await super()._step(step)
        except NoScriptError:  # as the sync twin
            assert isinstance(step, Eval)
            node = self.cluster.get_node_from_key(step.keys[0])
            await self.cluster.execute_command("SCRIPT", "LOAD", _lua.source(step.script), target_nodes=node)
            return await super()._step(step)

    async def _scan(self, step: Scan) -> tuple[int, list[bytes]]:
        masters = _masters(self.cluster.get_primaries())
        number, cursor = _split(step.cursor)
        if number >= len(masters):
            return 0, []
        node = masters[number]
        found, keys = await self.cluster.scan(cursor, match=step.match, count=step.count, target_nodes=node)
        after = int(found[node.name])
        if after == 0:
            return ((number + 1) << _NODE_BITS if number + 1 < len(masters) else 0), list(keys)
        return (number << _NODE_BITS) | after, list(keys)

    async def close(self) -> None:
        await self.cluster.aclose()
