"""The Redis store: for more than one machine. Every key has a TTL; every change is one Lua script.

The key layout (which keys a session, its data, its user's index and mark use, and why they
share one hash slot) and the encoding of records are in redis_layout.py.

The mark has no TTL on purpose: `volatile-*` eviction never takes it, so revocation holds even if
the index is evicted. An `allkeys-*` policy can take anything, which is why `huihua doctor` fails
and `huihua serve` warns unless `maxmemory-policy` is `noeviction` (`check_eviction`).

Deadlines are compared against the `now` the engine passes in (so a fake clock works); TTLs are
`ttl_seconds(deadline, now)`, so Redis forgets a session when it ends. `purge` exists for the
contract (and for a clock that is ahead of Redis); with TTLs it rarely finds anything.

Each operation is a generator written once in `RedisBase`, yielding steps that the sync and the
async twin perform (`_step`) under the shared drivers of `core/flow.py`; driver errors become
`StoreUnavailable` in one place.

(Over 300 lines because every operation is a flow here, beside the two small drivers that run
them: one operation reads top to bottom in one place. Keys and encoding are in redis_layout.py.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeAlias, TypeVar

import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..core.data import DataChanges, apply_changes, loads
from ..core.errors import StoreUnavailable
from ..core.flow import adrive, drive
from ..core.record import SessionRecord, Timing, ttl_seconds
from ..core.tokens import is_session_key, key_tag
from . import _lua
from .flows import AsyncFlowStore, FlowStore
from .redis_layout import RedisLayout, _as_str, _encode_data, _float_arg, _fresh, _pairs

T = TypeVar("T")
security_log = logging.getLogger("huihua.security")


@dataclass(frozen=True, slots=True)
class Eval:
    """Run one script."""

    script: str
    keys: Sequence[str]
    args: Sequence[str | int]


@dataclass(frozen=True, slots=True)
class Command:
    """Run one plain command."""

    args: Sequence[str | int]


@dataclass(frozen=True, slots=True)
class Batch:
    """Pipeline several steps (not a transaction: each is atomic on its own slot)."""

    steps: Sequence[Eval | Command]


@dataclass(frozen=True, slots=True)
class Scan:
    cursor: int
    match: str
    count: int


Step: TypeAlias = Eval | Command | Batch | Scan
Flow: TypeAlias = Generator[Step, Any, T]


@contextmanager
def driver_errors() -> Iterator[None]:
    """The one place Redis failures (connection, timeout, pool exhausted, OOM, script errors)
    become StoreUnavailable: the engine answers 503, never "no session"."""
    try:
        yield
    except (redis.RedisError, redis.exceptions.RedisClusterException, OSError) as exc:
        raise StoreUnavailable(f"Redis store: {exc}") from exc


class RedisBase(RedisLayout):
    """Every operation, with no I/O (the key layout and encoding are `RedisLayout`'s)."""

    _purge_cursor = 0

    # -- operations, each a flow of steps ------------------------------------------------------
    def _insert(self, record: SessionRecord, now: float, cap: int | None) -> Flow[list[str]]:
        keys = [self.meta_key(record.key), self.data_key(record.key)]
        if record.user_id is not None:
            keys += (self.index_key(record.user_id), self.mark_key(record.user_id))
        head: list[str | int] = [_float_arg(now), "" if cap is None else max(1, cap)]
        reply = yield Eval("create", keys, [*head, *self._create_args(record, now)])
        if _as_str(reply[0]) != "ok":
            raise ValueError("duplicate session key")
        return [_as_str(sid) for sid in reply[1:]]

    def _create(self, record: SessionRecord, max_per_user: int | None) -> Flow[list[str]]:
        self._check_tag(record)
        return (yield from self._insert(record, record.last_seen_at, max_per_user))

    def _get(self, key: str) -> Flow[SessionRecord | None]:
        if not is_session_key(key):
            return None
        reply = yield Eval("get", [self.meta_key(key), self.data_key(key)], [])
        return self._stale(self._decode(key, reply), reply[0], reply[2])

    def _update(
        self,
        key: str,
        now: float,
        changes: DataChanges | None,
        timing: Timing | None,
        max_bytes: int,
    ) -> Flow[SessionRecord | None]:
        if not is_session_key(key):
            return None
        args: list[str | int] = [_float_arg(now), max_bytes]
        if timing is None:
            args += ["0", "", "", "", "", ""]
        else:
            idle = "" if timing.idle_timeout is None else _float_arg(timing.idle_timeout)
            args += ["1", _float_arg(timing.last_seen_at), idle, _float_arg(timing.absolute_expires_at),
                     _float_arg(timing.expires_at), "1" if timing.persistent else "0"]  # fmt: skip
        sets: dict[str, Any] = dict(changes.set) if changes else {}
        unset: frozenset[str] = changes.unset if changes else frozenset()
        incr: dict[str, int] = dict(changes.incr) if changes else {}
        clear = bool(changes and changes.clear)
        if clear:  # after a clear every increment starts from 0: it is a plain set
            sets.update(incr)
            incr, unset = {}, frozenset()
        flat, _ = _encode_data(sets)
        args += ["1" if clear else "0", len(sets), len(unset), len(incr), *flat, *unset]
        for k, by in incr.items():
            args += (k, str(by))
        reply = yield Eval("update", [self.meta_key(key), self.data_key(key)], args)
        if _as_str(reply[0]) != "ok":
            self._refused(reply, max_bytes)
            return None
        record = self._decode(key, reply[1:3])
        if int(reply[3]) and record is not None and record.user_id is not None:
            index_ttl = ttl_seconds(record.timing.absolute_expires_at, now)
            yield Eval("extend", [self.index_key(record.user_id)], [index_ttl])
        return record

    def _owner(self, key: str) -> Flow[tuple[bool, str | None, str | None]]:
        """Whether `key` exists, its owner and public id: fixed for the life of a session."""
        user, sid = yield Command(["HMGET", self.meta_key(key), "user", "id"])
        return sid is not None, None if user is None else _as_str(user), None if sid is None else _as_str(sid)

    def _rotate(
        self,
        old_key: str,
        new: SessionRecord,
        now: float,
        keep_data: bool,
        max_bytes: int,
        *,
        max_per_user: int | None,
    ) -> Flow[tuple[SessionRecord, list[str]] | None]:
        self._check_tag(new)
        if not is_session_key(old_key):
            return None
        exists, old_user, old_id = yield from self._owner(old_key)
        if not exists or old_id is None:
            return None
        old_keys = [self.meta_key(old_key), self.data_key(old_key)]
        old_index = [] if old_user is None else [self.index_key(old_user)]
        new_keys = [self.meta_key(new.key), self.data_key(new.key)]
        new_index = [] if new.user_id is None else [self.index_key(new.user_id)]
        new_mark = [] if new.user_id is None else [self.mark_key(new.user_id)]
        head: list[str | int] = [_float_arg(now), max_bytes, "1" if keep_data else "0", old_id]
        if key_tag(old_key) == key_tag(new.key) and old_user == new.user_id:
            args = [*head, "1" if old_index else "0", "1" if new_index else "0",
                    *self._create_args(new, now)]  # fmt: skip
            keys = [*old_keys, *new_keys, *old_index, *new_index, *new_mark]
            reply = yield Eval("rotate", keys, args)
            if _as_str(reply[0]) == "exists":
                raise ValueError("duplicate session key")
            if _as_str(reply[0]) != "ok":
                self._refused(reply, max_bytes)
                return None
            record = self._decode(new.key, reply[1:3])
            return None if record is None else (record, [])
        # Another owner (another slot): retire the old session atomically, then create the new.
        flat, _ = _encode_data(new.data)
        reply = yield Eval("retire", [*old_keys, *old_index], [*head, *flat])
        if _as_str(reply[0]) != "ok":
            self._refused(reply, max_bytes)
            return None
        if keep_data:
            try:
                old_data = {k: loads(v) for k, v in _pairs(reply[1]).items()}
            except ValueError:  # corrupt: the old session is retired, nothing of it carries over
                security_log.error("corrupt session data %s not carried over", old_key[:4])
                old_data = {}
            merged = apply_changes(old_data, DataChanges(set=new.data), max_bytes=max_bytes)
            new = replace(new, data=merged)
        ended = yield from self._insert(new, now, max_per_user)
        return new, ended

    def _revoke(self, key: str, now: float) -> Flow[SessionRecord | None]:
        if not is_session_key(key):
            return None
        exists, user, sid = yield from self._owner(key)
        if not exists or sid is None:
            return None
        keys = [self.meta_key(key), self.data_key(key)]
        if user is not None:
            keys.append(self.index_key(user))
        reply = yield Eval("revoke", keys, [_float_arg(now), sid])
        return None if not reply else self._decode(key, reply)

    def _revoke_id(self, user_id: str, session_id: str, now: float) -> Flow[bool]:
        index = self.index_key(user_id)
        key = yield Command(["HGET", index, session_id])
        if key is None or not is_session_key(_as_str(key)):
            return False
        key = _as_str(key)
        keys = [self.meta_key(key), self.data_key(key), index]
        reply = yield Eval("revoke", keys, [_float_arg(now), session_id])
        return bool(reply)

    def _index(self, user_id: str) -> Flow[tuple[str, list[str], list[str]]]:
        index = self.index_key(user_id)
        flat = yield Command(["HGETALL", index])
        entries = {sid: _as_str(k) for sid, k in _pairs(flat).items() if is_session_key(_as_str(k))}
        keys = [index]
        for k in entries.values():
            keys += (self.meta_key(k), self.data_key(k))
        return index, keys, list(entries)

    def _remark(self, user_id: str, now: float, block: str, except_id: str | None) -> Flow[list[str]]:
        """Bump the user's mark even when the index is empty or gone: that is what revokes."""
        index, keys, ids = yield from self._index(user_id)
        keys = [index, self.mark_key(user_id), *keys[1:]]
        reply = yield Eval("revoke_many", keys, [_float_arg(now), except_id or "", block, *ids])
        return [_as_str(sid) for sid in reply]

    def _revoke_user(self, user_id: str, now: float, except_id: str | None) -> Flow[list[str]]:
        return (yield from self._remark(user_id, now, "", except_id))

    def _set_user_blocked(self, user_id: str, blocked: bool, now: float) -> Flow[list[str]]:
        return (yield from self._remark(user_id, now, "1" if blocked else "0", None))

    def _list_user(self, user_id: str, now: float) -> Flow[list[SessionRecord]]:
        index, keys, ids = yield from self._index(user_id)
        if not ids:
            return []
        reply = yield Eval("read_many", [index, self.mark_key(user_id), *keys[1:]], ids)
        mark, items = reply[0], reply[1:]
        records = []
        for i, item in enumerate(items):
            record = None if not item else self._decode(self._session_key(keys[1 + 2 * i]), item)
            if (
                record is not None
                and record.is_live(now)
                and record.user_id == user_id
                and _fresh(_pairs(item[0]).get("ep"), mark)
            ):
                records.append(record)
        return sorted(records, key=lambda r: (r.created_at, r.id))

    def _purge(self, now: float, limit: int) -> Flow[int]:
        """SCAN for sessions past their deadline and delete each with a script that re-checks it
        (a session touched since the scan survives). Resumes where the last call stopped."""
        removed = 0
        cursor = self._purge_cursor
        while True:
            start = cursor
            cursor, found = yield Scan(cursor, "hh:s:*", 1000)
            cursor = int(cursor)
            metas = [_as_str(k) for k in found]
            fields = []
            if metas:
                fields = yield Batch([Command(["HMGET", k, "exp", "user", "id"]) for k in metas])
            steps: list[Eval | Command] = []
            for meta, (exp, user, sid) in zip(metas, fields, strict=True):
                if exp is None:
                    continue  # gone meanwhile
                try:
                    if float(exp) > now:
                        continue
                except ValueError:
                    pass  # a corrupt deadline: nothing can serve it, remove it
                key = self._session_key(meta)
                keys = [meta, self.data_key(key)]
                if user is not None:
                    keys.append(self.index_key(_as_str(user)))
                steps.append(Eval("purge", keys, [_float_arg(now), _as_str(sid or b"")]))
            if len(steps) > limit - removed:  # stop inside this chunk; the next call rescans it
                steps, cursor = steps[: limit - removed], start
            for i in range(0, len(steps), 100):  # short pipelines: Redis serves others between
                removed += sum(int(r) for r in (yield Batch(steps[i : i + 100])))
            if cursor == 0 or removed >= limit:
                self._purge_cursor = cursor
                return removed

    def _count(self, now: float) -> Flow[int]:
        live = 0
        cursor = 0
        while True:
            cursor, found = yield Scan(cursor, "hh:s:*", 1000)
            if found:
                metas = [_as_str(k) for k in found]
                fields = yield Batch([Command(["HMGET", k, "revoked", "exp", "user", "ep"]) for k in metas])
                owned: list[tuple[str, Any]] = []  # live user sessions: (mark key, epoch)
                for meta, (revoked, exp, user, ep) in zip(metas, fields, strict=True):
                    try:
                        if revoked is None and exp is not None and float(exp) > now:
                            if user is None:
                                live += 1
                            else:
                                owned.append((f"hh:m:{{{meta[6:10]}}}{_as_str(user)}", ep))
                    except ValueError:
                        continue
                if owned:
                    marks = yield Batch([Command(["HMGET", mark, "ep", "blk"]) for mark, _ in owned])
                    live += sum(_fresh(ep, mark) for (_, ep), mark in zip(owned, marks, strict=True))
            if int(cursor) == 0:
                return live

    def _kv_set(self, key: str, value: str, now: float, ttl: float, only_if_absent: bool) -> Flow[bool]:
        flag = "1" if only_if_absent else "0"
        args: list[str | int] = [
            value,
            _float_arg(now + ttl),
            ttl_seconds(now + ttl, now),
            flag,
            _float_arg(now),
        ]
        done = yield Eval("kv_set", [self.kv_key(key)], args)
        return bool(done)

    def _kv_get(self, key: str, now: float) -> Flow[str | None]:
        value, deadline = yield Command(["HMGET", self.kv_key(key), "v", "e"])
        try:
            live = value is not None and deadline is not None and now < float(deadline)
        except ValueError:
            live = False
        return _as_str(value) if live else None

    def _kv_delete(self, key: str, if_value: str | None) -> Flow[bool]:
        expected = "" if if_value is None else "=" + if_value
        done = yield Eval("kv_delete", [self.kv_key(key)], [expected])
        return bool(done)

    def _ping(self) -> Flow[None]:
        yield Command(["PING"])


_NO_RETRY = Retry(NoBackoff(), 0)  # a retried script could apply twice; the engine answers 503


def _pool_options(
    max_connections: int, socket_timeout: float, connect_timeout: float, pool_timeout: float
) -> dict[str, Any]:
    return {
        "max_connections": max_connections,  # bounded: saturation waits pool_timeout, then 503
        "timeout": pool_timeout,
        "socket_timeout": socket_timeout,  # a dead or paused server cannot hang a request
        "socket_connect_timeout": connect_timeout,
        "retry": _NO_RETRY,
    }


class RedisStore(RedisBase, FlowStore):
    """The synchronous twin, over redis.Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._scripts = {name: client.register_script(_lua.source(name)) for name in _lua.SCRIPTS}

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
    ) -> RedisStore:
        """`connection_options` go to redis-py's connections (client_name, ssl_*, ...)."""
        options = _pool_options(max_connections, socket_timeout, connect_timeout, pool_timeout)
        pool = redis.BlockingConnectionPool.from_url(url, **options, **connection_options)
        return cls(redis.Redis(connection_pool=pool))

    def _step(self, step: Step) -> Any:
        if isinstance(step, Eval):
            return self._scripts[step.script](keys=step.keys, args=step.args)
        if isinstance(step, Command):
            return self.client.execute_command(*step.args)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        if isinstance(step, Scan):
            return self.client.scan(step.cursor, match=step.match, count=step.count)
        pipe = self.client.pipeline(transaction=False)
        for s in step.steps:
            if isinstance(s, Eval):
                self._scripts[s.script](keys=s.keys, args=s.args, client=pipe)
            else:
                pipe.execute_command(*s.args)  # type: ignore[no-untyped-call]  # untyped in redis-py
        return pipe.execute()

    def _run(self, flow: Flow[T]) -> T:
        with driver_errors():
            return drive(flow, self._step)

    TOPOLOGY = False  # one server (a cluster or a sentinel group: several, named)

    def policy_nodes(self) -> list[tuple[str, Callable[[], Mapping[Any, Any]]]]:
        """The servers whose `maxmemory-policy` matters, each named, with how to read it."""
        return [("", self._policy)]

    def _policy(self) -> Mapping[Any, Any]:
        reply: Mapping[Any, Any] = self.client.config_get("maxmemory-policy")  # type: ignore[assignment]  # sync client
        return reply

    def close(self) -> None:
        self.client.close()
        self.client.connection_pool.disconnect()


class AsyncRedisStore(RedisBase, AsyncFlowStore):
    """The asynchronous twin, over redis.asyncio.Redis."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client
        self._scripts = {name: client.register_script(_lua.source(name)) for name in _lua.SCRIPTS}

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
    ) -> AsyncRedisStore:
        """`connection_options` go to redis-py's connections (client_name, ssl_*, ...)."""
        options = _pool_options(max_connections, socket_timeout, connect_timeout, pool_timeout)
        pool = redis.asyncio.BlockingConnectionPool.from_url(url, **options, **connection_options)
        return cls(redis.asyncio.Redis(connection_pool=pool))

    async def _step(self, step: Step) -> Any:
        if isinstance(step, Eval):
            return await self._scripts[step.script](keys=step.keys, args=step.args)
        if isinstance(step, Command):
            return await self.client.execute_command(*step.args)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        if isinstance(step, Scan):
            return await self.client.scan(step.cursor, match=step.match, count=step.count)
        pipe = self.client.pipeline(transaction=False)
        for s in step.steps:
            if isinstance(s, Eval):
                await self._scripts[s.script](keys=s.keys, args=s.args, client=pipe)
            else:
                pipe.execute_command(*s.args)
        return await pipe.execute()

    async def _run(self, flow: Flow[T]) -> T:
        with driver_errors():
            return await adrive(flow, self._step)

    async def close(self) -> None:
        await self.client.aclose()
        await self.client.connection_pool.disconnect()


EVICTION_ADVICE = (
    "an evicting Redis can drop sessions, the per-user index and the revocation marks, so a"
    " logout-all, password change or disable could miss a session; set"
    " `maxmemory-policy noeviction` (and watch memory)"
)


def check_eviction(store: RedisStore) -> tuple[bool | None, str]:
    """Whether Redis' `maxmemory-policy` is `noeviction` on every server of the store (each
    master of a cluster, and the replicas that a failover would promote): (True, ...) yes,
    (False, the servers that evict), (None, ...) when it cannot be told (managed Redis often
    refuses CONFIG GET). A lone server is not named; the servers of a topology are."""
    nodes = store.policy_nodes()
    if not store.TOPOLOGY:
        ((_, read),) = nodes
        try:
            policy = _policy(read())
        except redis.ResponseError as exc:
            return None, f"Redis maxmemory-policy could not be checked (CONFIG GET refused: {exc})"
        if policy == "noeviction":
            return True, "Redis maxmemory-policy is noeviction"
        return False, f"Redis maxmemory-policy is {policy}: {EVICTION_ADVICE}"
    evicting: list[str] = []
    unknown: list[str] = []
    for name, read in nodes:
        try:
            policy = _policy(read())
        except redis.ResponseError as exc:
            unknown.append(f"{name} (CONFIG GET refused: {exc})")
        except (redis.RedisError, redis.exceptions.RedisClusterException, OSError) as exc:
            unknown.append(f"{name} (unreachable: {exc})")
        else:
            if policy != "noeviction":
                evicting.append(f"{policy} on {name}")
    if evicting:
        return False, f"Redis maxmemory-policy is {', '.join(evicting)}: {EVICTION_ADVICE}"
    if unknown:
        return None, f"Redis maxmemory-policy could not be checked on {', '.join(unknown)}"
    return True, f"Redis maxmemory-policy is noeviction on {', '.join(name for name, _ in nodes)}"


def _policy(reply: Mapping[Any, Any]) -> str:
    return _as_str(reply.get("maxmemory-policy") or reply.get(b"maxmemory-policy") or b"unknown")
