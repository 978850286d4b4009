"""The PostgreSQL store, for teams whose system of record is PostgreSQL (psycopg 3 + a pool).

The statements are `sql.POSTGRES` (written once for both SQL stores in `sql.py`). Each operation
is written once, as a generator that yields `(sql, params)` and receives the rows (httpx's
auth_flow idea); `PostgresStore` and `AsyncPostgresStore` are tiny drivers that run one
operation in one transaction on a pooled connection. Data changes lock the row
(`SELECT ... FOR UPDATE`) and apply `core.data.apply_changes`, so parallel writers of different
keys both survive and `incr` never loses a count.

`data` is `text` holding the JSON, not `jsonb`: jsonb cannot hold `\\u0000` in a string (which
JSON and the other stores allow) and we never query inside it. Tables are created on first use,
so a store can be built while the server is down and recovers by itself when it comes back.
The pool is bounded: when it is exhausted, or the server is gone, a caller waits at most
`timeout` seconds and gets `StoreUnavailable`. A statement waits at most `statement_timeout`
seconds (5 by default; a lock held by someone else, a runaway query) and also gets
`StoreUnavailable`, unless the server already sets one (database, role or URL `options`).

(Over 300 lines because it holds the operations as well as both drivers; the operations move
out when SQLite runs the same generators.)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TypeAlias, TypeVar

import psycopg
import psycopg.errors
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from ..core.data import DataChanges, apply_changes, dumps
from ..core.errors import StoreUnavailable
from ..core.flow import adrive, drive
from ..core.record import SessionRecord, Timing
from .flows import AsyncFlowStore, FlowStore
from .rows import decode_marked, decode_row, insert_args
from .sql import POSTGRES as SQL

T = TypeVar("T")
Query: TypeAlias = tuple[str, Sequence[Any]]
Rows: TypeAlias = tuple[list[tuple[Any, ...]], int]
Op: TypeAlias = Generator[Query, Rows, T]

_SCHEMA_LOCK = "SELECT pg_advisory_xact_lock(8437120516)"  # two processes creating at once
_USER_LOCK = "SELECT pg_advisory_xact_lock(84371205, hashtext(%s))"  # parallel creates, one cap


@contextmanager
def driver_errors() -> Iterator[None]:
    """The one place psycopg failures become StoreUnavailable (or a caller's mistake)."""
    try:
        yield
    except psycopg.errors.UniqueViolation as exc:
        raise ValueError("duplicate session key or id") from exc
    except psycopg.DataError as exc:  # e.g. NUL in a text value: the input, not the store
        raise ValueError(f"PostgreSQL refused a value: {exc}") from exc
    except (psycopg.Error, PoolTimeout, OSError) as exc:
        raise StoreUnavailable(f"PostgreSQL store: {type(exc).__name__}: {exc}") from exc


class PostgresBase:
    """Every operation, as a generator of queries; no I/O."""

    def _schema(self) -> Op[None]:
        yield _SCHEMA_LOCK, ()
        for sql in SQL.schema:
            yield sql, ()
        yield SQL.add_epoch, ()  # the per-user mark (core/store.py): older tables get the column

    def _insert(self, record: SessionRecord, now: float, cap: int | None) -> Op[list[str]]:
        if cap is None or record.user_id is None:
            yield SQL.insert, insert_args(record)
            return []
        yield _USER_LOCK, (record.user_id,)
        yield SQL.insert, insert_args(record)
        rows, _ = yield SQL.beyond_cap, (now, record.user_id, record.key, now, max(0, cap - 1))
        return [r[0] for r in rows]

    def _create(self, record: SessionRecord, max_per_user: int | None) -> Op[list[str]]:
        return (yield from self._insert(record, record.last_seen_at, max_per_user))

    def _get(self, key: str) -> Op[SessionRecord | None]:
        rows, _ = yield SQL.get, (key,)
        return decode_marked(rows[0]) if rows else None

    def _locked(self, key: str, now: float) -> Op[SessionRecord | None]:
        rows, _ = yield SQL.live, (key, now)
        return decode_row(rows[0]) if rows else None

    def _update(
        self,
        key: str,
        now: float,
        changes: DataChanges | None,
        timing: Timing | None,
        max_bytes: int,
    ) -> Op[SessionRecord | None]:
        if changes is None and timing is not None:  # activity: one conditional UPDATE, no read
            t = timing
            rows, _ = yield SQL.touch, (t.last_seen_at, t.idle_timeout, t.absolute_expires_at,
                                  t.expires_at, t.persistent, key, now)  # fmt: skip
            return decode_row(rows[0]) if rows else None
        record = yield from self._locked(key, now)
        if record is None:
            return None
        data = apply_changes(record.data, changes, max_bytes=max_bytes) if changes else record.data
        t = timing or record.timing
        yield (
            SQL.write,
            (dumps(dict(data)), t.last_seen_at, t.idle_timeout, t.absolute_expires_at,
             t.expires_at, t.persistent, key),
        )  # fmt: skip
        return replace(record, data=data, timing=t, version=record.version + 1)

    def _rotate(
        self,
        old_key: str,
        new: SessionRecord,
        now: float,
        keep_data: bool,
        max_bytes: int,
        *,
        max_per_user: int | None,
    ) -> Op[tuple[SessionRecord, list[str]] | None]:
        old = yield from self._locked(old_key, now)  # the row lock: one rotation wins
        if old is None:
            return None
        if keep_data:
            new = replace(new, data=apply_changes(old.data, DataChanges(set=new.data), max_bytes=max_bytes))
        yield SQL.tombstone, (now, old_key)
        ended = yield from self._insert(new, now, max_per_user)
        return new, ended

    def _revoke(self, key: str, now: float) -> Op[SessionRecord | None]:
        record = yield from self._locked(key, now)
        if record is not None:
            yield SQL.tombstone, (now, key)
        return record

    def _revoke_id(self, user_id: str, session_id: str, now: float) -> Op[bool]:
        _, count = yield SQL.revoke_id, (now, user_id, session_id, now)
        return count > 0

    def _remark(self, user_id: str, now: float, blocked: bool | None, except_id: str | None) -> Op[list[str]]:
        """Bump the epoch (and set `blocked` unless None), keep `except_id` live, tombstone the
        user's other sessions; the ids of those that were live. The mark row's lock orders
        concurrent calls; a create racing this one reads the old or the new epoch, both safe."""
        yield SQL.mark_ensure, (user_id, now)
        rows, _ = yield SQL.mark_read, (user_id,)
        old, was_blocked = int(rows[0][0]), bool(rows[0][1])
        now_blocked = was_blocked if blocked is None else blocked
        yield SQL.mark_write, (old + 1, now_blocked, now, user_id)
        if except_id is not None and not now_blocked:
            yield (
                SQL.mark_keep,
                (old + 1, user_id, except_id, now, old if not was_blocked else -1),
            )
        if blocked is False:
            return []  # unblocking: sessions of the blocked time stay dead by their epoch
        rows, _ = yield SQL.tombstone_user, (now, user_id, except_id, now)
        return [sid for sid, epoch in rows if epoch == old and not was_blocked]

    def _revoke_user(self, user_id: str, now: float, except_id: str | None) -> Op[list[str]]:
        return (yield from self._remark(user_id, now, None, except_id))

    def _set_user_blocked(self, user_id: str, blocked: bool, now: float) -> Op[list[str]]:
        return (yield from self._remark(user_id, now, blocked, None))

    def _list_user(self, user_id: str, now: float) -> Op[list[SessionRecord]]:
        rows, _ = yield SQL.list_user, (user_id, now)
        return [r for r in map(decode_row, rows) if r is not None]

    def _purge(self, now: float, limit: int) -> Op[int]:
        # One short statement per batch; SKIP LOCKED never waits on a request's row lock, and the
        # outer condition is re-checked on the row as it is when deleted (a touch wins).
        _, deleted = yield SQL.purge, (now, limit, now)
        yield SQL.purge_kv, (now,)
        return deleted

    def _count(self, now: float) -> Op[int]:
        rows, _ = yield SQL.count, (now,)
        return int(rows[0][0])

    def _kv_set(self, key: str, value: str, now: float, ttl: float, only_if_absent: bool) -> Op[bool]:
        sql = SQL.kv_set_if_absent if only_if_absent else SQL.kv_set  # a live holder keeps it
        _, count = yield sql, (key, value, now + ttl, *((now,) if only_if_absent else ()))
        return count > 0

    def _kv_get(self, key: str, now: float) -> Op[str | None]:
        rows, _ = yield SQL.kv_get, (key, now)
        return str(rows[0][0]) if rows else None

    def _kv_delete(self, key: str, if_value: str | None) -> Op[bool]:
        _, count = yield SQL.kv_delete, (key, if_value, if_value)
        return count > 0

    def _ping(self) -> Op[None]:
        yield SQL.ping, ()


def _pool_kwargs(url: str, max_size: int, timeout: float, connect: dict[str, Any]) -> dict[str, Any]:
    return {
        "conninfo": url,
        "min_size": 1,
        "max_size": max_size,
        "timeout": timeout,  # waiting for a connection: saturation or a dead server -> 503
        "kwargs": {"connect_timeout": max(2, int(timeout)), **connect, "autocommit": False},
        "open": False,
    }


# Only where nothing set one: an operator's database, role or URL setting wins.
_STATEMENT_TIMEOUT = (
    "SELECT set_config('statement_timeout', %s, false) WHERE current_setting('statement_timeout') = '0'"
)


def _timeout_ms(statement_timeout: float | None) -> str | None:
    return None if not statement_timeout else f"{max(1, round(statement_timeout * 1000))}ms"


class PostgresStore(PostgresBase, FlowStore):
    """The synchronous twin, over psycopg_pool.ConnectionPool."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self._ready = False
        self._lock = threading.Lock()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        max_size: int = 10,
        timeout: float = 2.0,
        statement_timeout: float | None = 5.0,
        **connect: Any,
    ) -> PostgresStore:
        """`connect` goes to psycopg.connect (application_name, sslmode, ...); `statement_timeout`
        None leaves statements unbounded."""
        limit = _timeout_ms(statement_timeout)

        def configure(conn: psycopg.Connection[Any]) -> None:
            conn.execute(_STATEMENT_TIMEOUT, (limit,))
            conn.commit()

        kwargs = _pool_kwargs(url, max_size, timeout, connect)
        return cls(ConnectionPool(**kwargs, configure=configure if limit else None))

    def _transaction(self, op: Op[T]) -> T:
        with self.pool.connection() as conn, conn.cursor() as cur:

            def execute(query: Query) -> Rows:
                cur.execute(query[0], query[1])
                return (cur.fetchall() if cur.description else []), cur.rowcount

            return drive(op, execute)

    def _run(self, op: Op[T]) -> T:
        with driver_errors():
            if not self._ready:
                with self._lock:
                    if not self._ready:
                        self.pool.open(wait=False)
                        self._transaction(self._schema())
                        self._ready = True
            return self._transaction(op)

    def close(self) -> None:
        self.pool.close()


class AsyncPostgresStore(PostgresBase, AsyncFlowStore):
    """The asynchronous twin, over psycopg_pool.AsyncConnectionPool."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        self._ready = False
        self._lock: asyncio.Lock | None = None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        max_size: int = 10,
        timeout: float = 2.0,
        statement_timeout: float | None = 5.0,
        **connect: Any,
    ) -> AsyncPostgresStore:
        """`connect` goes to psycopg.AsyncConnection.connect (application_name, sslmode, ...);
        `statement_timeout` None leaves statements unbounded."""
        limit = _timeout_ms(statement_timeout)

        async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.execute(_STATEMENT_TIMEOUT, (limit,))
            await conn.commit()

        kwargs = _pool_kwargs(url, max_size, timeout, connect)
        return cls(AsyncConnectionPool(**kwargs, configure=configure if limit else None))

    async def _transaction(self, op: Op[T]) -> T:
        async with self.pool.connection() as conn, conn.cursor() as cur:

            async def execute(query: Query) -> Rows:
                await cur.execute(query[0], query[1])
                return ((await cur.fetchall()) if cur.description else []), cur.rowcount

            return await adrive(op, execute)

    async def _run(self, op: Op[T]) -> T:
        with driver_errors():
            if not self._ready:
                self._lock = self._lock or asyncio.Lock()
                async with self._lock:
                    if not self._ready:
                        await self.pool.open(wait=False)
                        await self._transaction(self._schema())
                        self._ready = True
            return await self._transaction(op)

    async def close(self) -> None:
        await self.pool.close()
