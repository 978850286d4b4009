"""Strict parsing of the Redis Cluster and Sentinel store URLs.

    redis+cluster://[user:password@]host:port[,host:port...]/
    redis+sentinel://[user:password@]host:port[,host:port...]/MASTER_NAME[/DB]

The hosts are the startup nodes (cluster) or the sentinels; the credentials are the data nodes'.
A URL that does not fit is refused with a message naming HUIHUA_STORE, before anything connects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from ..config import masked_url

_URL = re.compile(r"^(?P<scheme>[a-z+]+)://(?:(?P<auth>[^@/]*)@)?(?P<hosts>[^/?#@]*)(?P<path>/[^?#]*)?$")
_HOST = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


@dataclass(frozen=True)
class RedisTopology:
    hosts: tuple[tuple[str, int], ...]
    username: str | None
    password: str | None
    master: str | None = None  # sentinel only
    db: int = 0


def _bad(url: str, why: str) -> ValueError:
    return ValueError(f"HUIHUA_STORE {masked_url(url)!r} is not a valid store URL: {why}")


def _parse(url: str, scheme: str) -> tuple[RedisTopology, list[str]]:
    found = _URL.match(url)
    if found is None or found["scheme"] != scheme:
        raise _bad(url, f"expected {scheme}://host:port[,host:port...]/...")
    hosts: list[tuple[str, int]] = []
    for item in found["hosts"].split(","):
        host = _HOST.match(item.strip())
        if host is None or not 0 < int(host["port"]) < 65536:
            raise _bad(url, f"{item.strip()!r} is not host:port")
        hosts.append((host["host"].strip("[]"), int(host["port"])))
    username = password = None
    if found["auth"] is not None:
        user, sep, secret = found["auth"].partition(":")
        username = unquote(user) or None
        password = unquote(secret) if sep else None
    parts = [p for p in (found["path"] or "").split("/") if p]
    return RedisTopology(tuple(hosts), username, password), parts


def parse_cluster_url(url: str) -> RedisTopology:
    topology, path = _parse(url, "redis+cluster")
    if path:
        raise _bad(url, "a cluster has one database: end the URL with the last host:port and '/'")
    return topology


def parse_sentinel_url(url: str) -> RedisTopology:
    topology, path = _parse(url, "redis+sentinel")
    if not path or len(path) > 2 or not _NAME.match(path[0]):
        raise _bad(url, "expected .../MASTER_NAME/DB after the sentinels")
    if len(path) == 2 and not (path[1].isdigit() and int(path[1]) < 16384):
        raise _bad(url, f"database {path[1]!r} is not a number")
    db = int(path[1]) if len(path) == 2 else 0
    return RedisTopology(topology.hosts, topology.username, topology.password, master=path[0], db=db)
