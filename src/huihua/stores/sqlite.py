"""The embedded default: one SQLite file in WAL mode, shared safely by several processes.

WAL with `synchronous=NORMAL` keeps every committed transaction across a crash of the process
(kill -9); `synchronous=FULL` (`?synchronous=full`) also across power loss. Writes take the lock
up front (`BEGIN IMMEDIATE`), so a read-modify-write of session data is atomic between processes.
The statements are `sql.SQLITE`; this module holds the connections, transactions and errors.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from ..core.data import DataChanges, apply_changes, dumps
from ..core.errors import StoreFull, StoreUnavailable
from ..core.files import create_private
from ..core.record import SessionRecord, Timing
from .rows import decode_marked, decode_row, insert_args
from .sql import SQLITE as SQL

T = TypeVar("T")


class Busy(Exception):
    """Another connection holds the write lock; the whole operation may be retried."""


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def is_full(exc: sqlite3.Error) -> bool:
    """SQLITE_FULL: the disk (or the file system's quota) has no room for the change."""
    code = getattr(exc, "sqlite_errorcode", None)
    return (code is not None and code & 0xFF == sqlite3.SQLITE_FULL) or "disk is full" in str(exc)


def driver_error(where: str, exc: sqlite3.Error) -> StoreUnavailable:
    """The engine's error for a failed SQLite call: StoreFull for a full disk (507), else
    StoreUnavailable (503)."""
    if is_full(exc):
        return StoreFull(f"{where}: {exc}; free disk space")
    return StoreUnavailable(f"{where}: {exc}")


class SQLiteStore:
    def __init__(
        self,
        path: str,
        *,
        busy_timeout: float = 5.0,
        synchronous: str = "NORMAL",
        raise_busy: bool = False,
    ) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._synchronous = synchronous.upper()
        self._raise_busy = raise_busy  # the async twin retries without blocking its loop
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._run(lambda db: db.executescript(";\n".join(SQL.schema)))
        self._run(self._migrate)

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        """Databases made before the per-user mark: every session counts as epoch 0."""

        def columns() -> set[str]:
            return {row[1] for row in db.execute("PRAGMA table_info(huihua_session)")}

        if "epoch" in columns():
            return  # no lock taken: processes opening an up-to-date file never wait here
        db.execute("BEGIN IMMEDIATE")
        try:
            if "epoch" not in columns():
                db.execute(SQL.add_epoch)
        finally:
            db.execute("COMMIT")

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            timeout = 0.0 if self._raise_busy else self._busy_timeout
            create_private(self.path)  # sessions are private: 0600, and so its -wal and -shm
            db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self._synchronous}")
            self._local.db = db
            with self._guard:
                self._all.append(db)
        return db

    def _run(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run one operation; driver errors become StoreUnavailable, lock waits become Busy."""
        try:
            db = self._connection()
            return op(db)
        except sqlite3.OperationalError as exc:
            if _is_busy(exc) and self._raise_busy:
                raise Busy(str(exc)) from exc
            raise driver_error(f"SQLite store {self.path}", exc) from exc
        except sqlite3.Error as exc:
            raise driver_error(f"SQLite store {self.path}", exc) from exc

    def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        def transaction(db: sqlite3.Connection) -> T:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = op(db)
            except BaseException:
                # SQLite may have rolled back already (SQLITE_FULL, IOERR, ...): a second ROLLBACK
                # would fail and hide the error that matters
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result

        return self._run(transaction)

    # -- sessions ------------------------------------------------------------------------------
    @staticmethod
    def _insert(db: sqlite3.Connection, record: SessionRecord, now: float, cap: int | None) -> list[str]:
        db.execute(SQL.insert, insert_args(record))
        if cap is None or record.user_id is None:
            return []
        rows = db.execute(SQL.beyond_cap, (now, record.user_id, record.key, now, max(0, cap - 1))).fetchall()
        return [r[0] for r in rows]

    def create(self, record: SessionRecord, *, max_per_user: int | None = None) -> list[str]:
        return self._write(lambda db: self._insert(db, record, record.last_seen_at, max_per_user))

    def get(self, key: str) -> SessionRecord | None:
        row = self._run(lambda db: db.execute(SQL.get, (key,)).fetchone())
        return None if row is None else decode_marked(row)

    @staticmethod
    def _live(db: sqlite3.Connection, key: str, now: float) -> SessionRecord | None:
        row = db.execute(SQL.live, (key, now)).fetchone()
        return None if row is None else decode_row(row)

    def update(
        self,
        key: str,
        now: float,
        *,
        changes: DataChanges | None = None,
        timing: Timing | None = None,
        max_bytes: int,
    ) -> SessionRecord | None:
        def op(db: sqlite3.Connection) -> SessionRecord | None:
            record = self._live(db, key, now)
            if record is None:
                return None
            data = apply_changes(record.data, changes, max_bytes=max_bytes) if changes else record.data
            t = timing or record.timing
            db.execute(
                SQL.write,
                (
                    dumps(dict(data)),
                    t.last_seen_at,
                    t.idle_timeout,
                    t.absolute_expires_at,
                    t.expires_at,
                    t.persistent,
                    key,
                ),
            )
            return replace(record, data=data, timing=t, version=record.version + 1)

        if changes is None and timing is not None:
            return self._touch(key, now, timing)
        return self._write(op)

    def _touch(self, key: str, now: float, t: Timing) -> SessionRecord | None:
        """Activity without a read-modify-write: one conditional UPDATE, data untouched."""
        args = (t.last_seen_at, t.idle_timeout, t.absolute_expires_at, t.expires_at, t.persistent, key, now)
        row = self._write(lambda db: db.execute(SQL.touch, args).fetchone())
        return None if row is None else decode_row(row)

    @staticmethod
    def _tombstone(db: sqlite3.Connection, key: str, now: float) -> None:
        db.execute(SQL.tombstone, (now, key))

    def rotate(
        self,
        old_key: str,
        new: SessionRecord,
        now: float,
        *,
        keep_data: bool,
        max_bytes: int,
        max_per_user: int | None = None,
    ) -> tuple[SessionRecord, list[str]] | None:
        def op(db: sqlite3.Connection) -> tuple[SessionRecord, list[str]] | None:
            old = self._live(db, old_key, now)
            if old is None:
                return None
            created = new
            if keep_data:
                merged = apply_changes(old.data, DataChanges(set=new.data), max_bytes=max_bytes)
                created = replace(new, data=merged)
            self._tombstone(db, old_key, now)
            return created, self._insert(db, created, now, max_per_user)

        return self._write(op)

    def revoke(self, key: str, now: float) -> SessionRecord | None:
        def op(db: sqlite3.Connection) -> SessionRecord | None:
            record = self._live(db, key, now)
            if record is not None:
                self._tombstone(db, key, now)
            return record

        return self._write(op)

    def revoke_id(self, user_id: str, session_id: str, now: float) -> bool:
        return self._write(lambda db: db.execute(SQL.revoke_id, (now, user_id, session_id, now)).rowcount) > 0

    @staticmethod
    def _remark(
        db: sqlite3.Connection, user_id: str, now: float, blocked: bool | None, except_id: str | None
    ) -> list[str]:
        """Bump the epoch (and set `blocked` unless None), keep `except_id` live, tombstone the
        user's other sessions; the ids of those that were live."""
        db.execute(SQL.mark_ensure, (user_id, now))
        old, was_blocked = db.execute(SQL.mark_read, (user_id,)).fetchone()
        now_blocked = bool(was_blocked) if blocked is None else blocked
        db.execute(SQL.mark_write, (old + 1, now_blocked, now, user_id))
        if except_id is not None and not now_blocked:
            db.execute(SQL.mark_keep, (old + 1, user_id, except_id, now, old if not was_blocked else -1))
        if blocked is False:
            return []  # unblocking: sessions of the blocked time stay dead by their epoch
        rows = db.execute(SQL.tombstone_user, (now, user_id, except_id, now)).fetchall()
        return [sid for sid, epoch in rows if epoch == old and not was_blocked]

    def revoke_user(self, user_id: str, now: float, *, except_id: str | None = None) -> list[str]:
        return self._write(lambda db: self._remark(db, user_id, now, None, except_id))

    def set_user_blocked(self, user_id: str, blocked: bool, now: float) -> list[str]:
        return self._write(lambda db: self._remark(db, user_id, now, blocked, None))

    def list_user(self, user_id: str, now: float) -> list[SessionRecord]:
        rows = self._run(lambda db: db.execute(SQL.list_user, (user_id, now)).fetchall())
        return [r for r in map(decode_row, rows) if r is not None]

    def purge(self, now: float, limit: int) -> int:
        # One short transaction per batch, so concurrent requests wait for at most one batch.
        deleted: int = self._write(lambda db: db.execute(SQL.purge, (now, limit, now)).rowcount)
        self._write(lambda db: db.execute(SQL.purge_kv, (now,)))
        return deleted

    def count(self, now: float) -> int:
        result: int = self._run(lambda db: db.execute(SQL.count, (now,)).fetchone()[0])
        return result

    # -- small key-value space -----------------------------------------------------------------
    def kv_set(self, key: str, value: str, *, now: float, ttl: float, only_if_absent: bool = False) -> bool:
        sql = SQL.kv_set_if_absent if only_if_absent else SQL.kv_set  # a live holder keeps it
        args = (key, value, now + ttl, *((now,) if only_if_absent else ()))
        return self._write(lambda db: db.execute(sql, args).rowcount) > 0

    def kv_get(self, key: str, *, now: float) -> str | None:
        row = self._run(lambda db: db.execute(SQL.kv_get, (key, now)).fetchone())
        return None if row is None else str(row[0])

    def kv_delete(self, key: str, *, if_value: str | None = None) -> bool:
        return self._write(lambda db: db.execute(SQL.kv_delete, (key, if_value, if_value)).rowcount) > 0

    def ping(self) -> None:
        self._run(lambda db: db.execute(SQL.ping).fetchone())

    def close(self) -> None:
        with self._guard:
            for db in self._all:
                db.close()
            self._all.clear()
        self._local = threading.local()
