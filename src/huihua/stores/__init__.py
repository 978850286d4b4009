"""Session stores, chosen by URL.

memory://                      in-process (tests, one process); memory://name shares one by name
sqlite:///path/to/huihua.db    the embedded default; ?synchronous=full for power-loss safety
redis://host:6379/0            more than one machine; rediss:// for TLS
redis+cluster://h:p,h:p/       a Redis Cluster (startup nodes)
redis+sentinel://h:p,h:p/NAME/0  Redis behind Sentinel (the sentinels, the master's name, a db)
postgresql://user@host/db      teams whose system of record is PostgreSQL
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from ..core.store import AsyncStore, Store
from .memory import MemoryStore

__all__ = ["AsyncStore", "MemoryStore", "Store", "async_store_from_url", "sqlite_path", "store_from_url"]

_named_memory: dict[str, MemoryStore] = {}


def _memory(name: str) -> MemoryStore:
    if not name:
        return MemoryStore()
    return _named_memory.setdefault(name, MemoryStore())


def sqlite_path(url: str) -> tuple[str, dict[str, str]]:
    """The file and the query options of a sqlite:// URL (the accounts database reads it too)."""
    parts = urlsplit(url)
    path = (parts.netloc + parts.path) if parts.netloc else parts.path
    if path.startswith("/./") or path.startswith("/../"):
        path = path[1:]  # sqlite:///./huihua.db is relative, as users write it
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return path or "huihua.db", options


def store_from_url(url: str) -> Store:
    """A synchronous store for `url`."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return _memory(urlsplit(url).netloc)
    if scheme == "sqlite":
        from .sqlite import SQLiteStore

        path, options = sqlite_path(url)
        return SQLiteStore(path, synchronous=options.get("synchronous", "NORMAL"))
    if scheme in ("redis", "rediss", "unix"):
        from .redis import RedisStore

        return RedisStore.from_url(url)
    if scheme == "redis+cluster":
        from .redis_cluster import RedisClusterStore

        return RedisClusterStore.from_url(url)
    if scheme == "redis+sentinel":
        from .redis_sentinel import RedisSentinelStore

        return RedisSentinelStore.from_url(url)
    if scheme in ("postgres", "postgresql"):
        from .postgres import PostgresStore

        return PostgresStore.from_url(url)
    raise ValueError(
        f"unknown store URL scheme {scheme!r}: use memory://, sqlite://, redis://, redis+cluster://, "
        "redis+sentinel:// or postgresql://"
    )


def async_store_from_url(url: str) -> AsyncStore:
    """An asynchronous store for `url` (the service's)."""
    from .inline import InlineAsyncStore

    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return InlineAsyncStore(_memory(urlsplit(url).netloc))
    if scheme == "sqlite":
        from .sqlite import SQLiteStore

        path, options = sqlite_path(url)
        sync = SQLiteStore(path, synchronous=options.get("synchronous", "NORMAL"), raise_busy=True)
        return InlineAsyncStore(sync)
    if scheme in ("redis", "rediss", "unix"):
        from .redis import AsyncRedisStore

        return AsyncRedisStore.from_url(url)
    if scheme == "redis+cluster":
        from .redis_cluster import AsyncRedisClusterStore

        return AsyncRedisClusterStore.from_url(url)
    if scheme == "redis+sentinel":
        from .redis_sentinel import AsyncRedisSentinelStore

        return AsyncRedisSentinelStore.from_url(url)
    if scheme in ("postgres", "postgresql"):
        from .postgres import AsyncPostgresStore

        return AsyncPostgresStore.from_url(url)
    raise ValueError(
        f"unknown store URL scheme {scheme!r}: use memory://, sqlite://, redis://, redis+cluster://, "
        "redis+sentinel:// or postgresql://"
    )
