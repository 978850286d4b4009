"""The Redis store's key layout and record encoding, no I/O: the half of `RedisBase` (redis.py)
that says where things are and how they are written, apart from the operations that use it.

Key layout, ready for Redis Cluster: a session key `TAG.HEX` (see core/tokens.py) lives in

    hh:s:{TAG}HEX               meta hash: deadlines, owner, device, version, data size
    hh:d:{TAG}HEX               data hash: one field per top-level key, value = its JSON text
    hh:u:{TAG}<user id>         the user's index: public session id -> session key
    hh:m:{TAG}<user id>         the user's mark: epoch, blocked, when it changed. NO TTL
    hh:kv:{<key>}               the small key-value space (locks, shared caches)

TAG is `routing_tag(user_id)` for every session of a user, so a session, its data, its user's
index and mark share one hash slot and each script touches one slot. Scripts touch the keys they
are given, and the mark and (under a per-user cap) the index's sessions derived from them, on the
same slot (see _lua.py); where the user (and so the index key) is not known yet, the flow reads it
first: a session's owner never changes, so that read cannot go stale. A rotation to another owner
is two atomic steps: retire the old session on its slot (check, take the data, tombstone), then
create.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..core.data import dumps, entry_size, loads
from ..core.errors import NotAnInteger, SessionDataError, SessionDataTooLarge
from ..core.record import SessionRecord, Timing, ttl_seconds
from ..core.tokens import is_session_key, key_tag, routing_tag

security_log = logging.getLogger("huihua.security")


def _float_arg(value: float) -> str:
    return repr(float(value))  # exact: Lua's tonumber() reads it back bit for bit


def _as_str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _pairs(flat: Sequence[bytes] | Mapping[bytes, bytes]) -> dict[str, bytes]:
    """A hash as scripts return it (flat) or as redis-py parses HGETALL (a dict)."""
    if isinstance(flat, Mapping):
        return {_as_str(k): v for k, v in flat.items()}
    return {_as_str(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}


def _fresh(epoch: bytes | str | None, mark: Sequence[Any] | None) -> bool:
    """A user session's epoch against its user's mark (ep, blk, ...): live only if equal and
    the user is not blocked; absent values are epoch 0."""
    mark_epoch, blocked = (mark[0], mark[1]) if mark else (None, None)
    if blocked is not None:
        return False
    try:
        return int(_as_str(epoch or b"0")) == int(_as_str(mark_epoch or b"0"))
    except ValueError:
        return False


def _encode_data(data: Mapping[str, Any]) -> tuple[list[str], int]:
    flat: list[str] = []
    size = 0
    for k, v in data.items():
        text = dumps(v)
        flat += (k, text)
        size += entry_size(k, text)
    return flat, size


class RedisLayout:
    """Key layout and encoding of `RedisBase`, with no I/O."""

    # -- keys ----------------------------------------------------------------------------------
    @staticmethod
    def meta_key(key: str) -> str:
        return f"hh:s:{{{key[:4]}}}{key[5:]}"

    @staticmethod
    def data_key(key: str) -> str:
        return f"hh:d:{{{key[:4]}}}{key[5:]}"

    @staticmethod
    def index_key(user_id: str) -> str:
        return f"hh:u:{{{routing_tag(user_id)}}}{user_id}"

    @staticmethod
    def mark_key(user_id: str) -> str:
        return f"hh:m:{{{routing_tag(user_id)}}}{user_id}"

    @staticmethod
    def kv_key(key: str) -> str:
        return f"hh:kv:{{{key}}}"

    @staticmethod
    def _session_key(meta_key: str) -> str:
        return f"{meta_key[6:10]}.{meta_key[11:]}"

    # -- records -------------------------------------------------------------------------------
    @staticmethod
    def _meta_args(record: SessionRecord, size: int) -> list[str]:
        t = record.timing
        flat = [
            "id", record.id, "client", record.client, "created", _float_arg(record.created_at),
            "seen", _float_arg(t.last_seen_at), "abs", _float_arg(t.absolute_expires_at),
            "exp", _float_arg(t.expires_at),
            "persist", "1" if t.persistent else "0", "ver", str(record.version), "size", str(size),
        ]  # fmt: skip
        optional = (
            ("user", record.user_id), ("ip", record.ip), ("ua", record.user_agent),
            ("idle", None if t.idle_timeout is None else _float_arg(t.idle_timeout)),
            ("revoked", None if record.revoked_at is None else _float_arg(record.revoked_at)),
        )  # fmt: skip
        for name, value in optional:
            if value is not None:
                flat += (name, value)
        return flat

    def _create_args(self, record: SessionRecord, now: float) -> list[str | int]:
        data, size = _encode_data(record.data)
        meta = self._meta_args(record, size)
        ttl = ttl_seconds(record.expires_at, now)
        index_ttl = max(ttl, ttl_seconds(record.timing.absolute_expires_at, now))
        return [ttl, index_ttl, record.id, record.key, len(meta), *meta, *data]

    def _check_tag(self, record: SessionRecord) -> None:
        if not is_session_key(record.key):
            raise ValueError("not a session key")
        if record.user_id is not None and key_tag(record.key) != routing_tag(record.user_id):
            raise ValueError("a user's session key must carry routing_tag(user_id)")

    @staticmethod
    def _decode(key: str, reply: Sequence[Any]) -> SessionRecord | None:
        """A stored record, or None when absent or corrupt (logged: fail closed, never a 500)."""
        meta_flat, data_flat = reply[0], reply[1]
        if not meta_flat:
            return None
        try:
            meta = {k: _as_str(v) for k, v in _pairs(meta_flat).items()}
            data = {k: loads(v) for k, v in _pairs(data_flat).items()}
            idle, revoked = meta.get("idle"), meta.get("revoked")
            return SessionRecord(
                key=key,
                id=meta["id"],
                user_id=meta.get("user"),
                client=meta["client"],
                created_at=float(meta["created"]),
                timing=Timing(
                    last_seen_at=float(meta["seen"]),
                    idle_timeout=None if idle is None else float(idle),
                    absolute_expires_at=float(meta["abs"]),
                    persistent=meta["persist"] == "1",
                ),
                ip=meta.get("ip"),
                user_agent=meta.get("ua"),
                data=data,
                revoked_at=None if revoked is None else float(revoked),
                version=int(meta["ver"]),
            )
        except (KeyError, ValueError, IndexError) as exc:
            security_log.error("corrupt session record %s ignored: %s", key[:4], type(exc).__name__)
            return None

    @staticmethod
    def _stale(record: SessionRecord | None, meta_flat: Any, mark: Any) -> SessionRecord | None:
        """The record, or the tombstone it is when its epoch is not its user's or the user is
        blocked (`mark`: the user's ep, blk[, at] as HMGET gives them)."""
        if record is None or record.user_id is None or record.revoked_at is not None:
            return record
        if _fresh(_pairs(meta_flat).get("ep"), mark):
            return record
        try:
            at = float(_as_str(mark[2])) if mark and len(mark) > 2 and mark[2] is not None else 0.0
        except ValueError:
            at = 0.0  # a damaged mark still revokes
        return replace(record, data={}, revoked_at=at)

    @staticmethod
    def _refused(reply: Sequence[Any], max_bytes: int = 0) -> None:
        status = _as_str(reply[0])
        if status == "notint":
            raise NotAnInteger(_as_str(reply[1]))
        if status == "overflow":
            raise SessionDataError(f"incr of {_as_str(reply[1])!r} would overflow 64 bits")
        if status == "big":
            raise SessionDataTooLarge(int(reply[1]), max_bytes)
