"""The embedded default: one SQLite file in WAL mode, shared safely by several processes.

WAL with `synchronous=NORMAL` keeps every committed transaction across a crash of the process
(kill -9); `synchronous=FULL` (`?synchronous=full`) also across power loss. Writes take the lock
up front (`BEGIN IMMEDIATE`), so a read-modify-write of session data is atomic between processes.
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
from .rows import FRESH, JOINED, SELECT_COLUMNS, decode_marked, decode_row, insert_args, insert_sql

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS huihua_session (
    key TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    user_id TEXT,
    client TEXT NOT NULL,
    ip TEXT,
    user_agent TEXT,
    created_at REAL NOT NULL,
    last_seen_at REAL NOT NULL,
    idle_timeout REAL,
    absolute_expires_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    persistent INTEGER NOT NULL,
    revoked_at REAL,
    version INTEGER NOT NULL,
    data TEXT NOT NULL,
    epoch INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS huihua_session_expires ON huihua_session (expires_at);
CREATE INDEX IF NOT EXISTS huihua_session_user ON huihua_session (user_id, created_at)
    WHERE user_id IS NOT NULL AND revoked_at IS NULL;
CREATE TABLE IF NOT EXISTS huihua_user_mark (
    user_id TEXT PRIMARY KEY,
    epoch INTEGER NOT NULL,
    blocked INTEGER NOT NULL,
    changed_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS huihua_kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
"""

_INSERT = insert_sql("?")
_LIVE = f"revoked_at IS NULL AND expires_at > ? AND {FRESH}"
_TOMBSTONE = "UPDATE huihua_session SET revoked_at = ?, data = '{}', version = version + 1"
# the live others of a user beyond the newest `cap - 1`: what a new session pushes out
_BEYOND_CAP = (
    f"{_TOMBSTONE} WHERE key IN (SELECT key FROM huihua_session WHERE user_id = ? AND key <> ?"
    f" AND {_LIVE} ORDER BY last_seen_at DESC, created_at DESC, id DESC LIMIT -1 OFFSET ?) RETURNING id"
)


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
        self._run(lambda db: db.executescript(SCHEMA))
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
                db.execute("ALTER TABLE huihua_session ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0")
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
        db.execute(_INSERT, insert_args(record))
        if cap is None or record.user_id is None:
            return []
        rows = db.execute(_BEYOND_CAP, (now, record.user_id, record.key, now, max(0, cap - 1))).fetchall()
        return [r[0] for r in rows]

    def create(self, record: SessionRecord, *, max_per_user: int | None = None) -> list[str]:
        return self._write(lambda db: self._insert(db, record, record.last_seen_at, max_per_user))

    def get(self, key: str) -> SessionRecord | None:
        sql = f"{JOINED} WHERE s.key = ?"
        row = self._run(lambda db: db.execute(sql, (key,)).fetchone())
        return None if row is None else decode_marked(row)

    @staticmethod
    def _live(db: sqlite3.Connection, key: str, now: float) -> SessionRecord | None:
        sql = f"SELECT {SELECT_COLUMNS} FROM huihua_session WHERE key = ? AND {_LIVE}"
        row = db.execute(sql, (key, now)).fetchone()
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
                "UPDATE huihua_session SET data = ?, last_seen_at = ?, idle_timeout = ?,"
                " absolute_expires_at = ?, expires_at = ?, persistent = ?, version = version + 1"
                " WHERE key = ?",
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
        sql = (
            "UPDATE huihua_session SET last_seen_at = ?, idle_timeout = ?, absolute_expires_at = ?,"
            f" expires_at = ?, persistent = ?, version = version + 1 WHERE key = ? AND {_LIVE}"
            f" RETURNING {SELECT_COLUMNS}"
        )
        args = (t.last_seen_at, t.idle_timeout, t.absolute_expires_at, t.expires_at, t.persistent, key, now)
        row = self._write(lambda db: db.execute(sql, args).fetchone())
        return None if row is None else decode_row(row)

    @staticmethod
    def _tombstone(db: sqlite3.Connection, key: str, now: float) -> None:
        db.execute(f"{_TOMBSTONE} WHERE key = ?", (now, key))

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
        sql = f"{_TOMBSTONE} WHERE user_id = ? AND id = ? AND {_LIVE}"
        return self._write(lambda db: db.execute(sql, (now, user_id, session_id, now)).rowcount) > 0

    @staticmethod
    def _remark(
        db: sqlite3.Connection, user_id: str, now: float, blocked: bool | None, except_id: str | None
    ) -> list[str]:
        """Bump the epoch (and set `blocked` unless None), keep `except_id` live, tombstone the
        user's other sessions; the ids of those that were live."""
        db.execute(
            "INSERT INTO huihua_user_mark (user_id, epoch, blocked, changed_at) VALUES (?, 0, 0, ?)"
            " ON CONFLICT (user_id) DO NOTHING",
            (user_id, now),
        )
        old, was_blocked = db.execute(
            "SELECT epoch, blocked FROM huihua_user_mark WHERE user_id = ?", (user_id,)
        ).fetchone()
        now_blocked = bool(was_blocked) if blocked is None else blocked
        db.execute(
            "UPDATE huihua_user_mark SET epoch = ?, blocked = ?, changed_at = ? WHERE user_id = ?",
            (old + 1, now_blocked, now, user_id),
        )
        if except_id is not None and not now_blocked:
            db.execute(
                "UPDATE huihua_session SET epoch = ? WHERE user_id = ? AND id = ? AND revoked_at IS NULL"
                " AND expires_at > ? AND epoch = ?",
                (old + 1, user_id, except_id, now, old if not was_blocked else -1),
            )
        if blocked is False:
            return []  # unblocking: sessions of the blocked time stay dead by their epoch
        rows = db.execute(
            f"{_TOMBSTONE} WHERE user_id = ? AND id IS NOT ? AND revoked_at IS NULL AND expires_at > ?"
            " RETURNING id, epoch",
            (now, user_id, except_id, now),
        ).fetchall()
        return [sid for sid, epoch in rows if epoch == old and not was_blocked]

    def revoke_user(self, user_id: str, now: float, *, except_id: str | None = None) -> list[str]:
        return self._write(lambda db: self._remark(db, user_id, now, None, except_id))

    def set_user_blocked(self, user_id: str, blocked: bool, now: float) -> list[str]:
        return self._write(lambda db: self._remark(db, user_id, now, blocked, None))

    def list_user(self, user_id: str, now: float) -> list[SessionRecord]:
        sql = (
            f"SELECT {SELECT_COLUMNS} FROM huihua_session WHERE user_id = ? AND {_LIVE}"
            " ORDER BY created_at, id"
        )
        rows = self._run(lambda db: db.execute(sql, (user_id, now)).fetchall())
        return [r for r in map(decode_row, rows) if r is not None]

    def purge(self, now: float, limit: int) -> int:
        # One short transaction per batch, so concurrent requests wait for at most one batch.
        sql = (
            "DELETE FROM huihua_session WHERE key IN"
            " (SELECT key FROM huihua_session WHERE expires_at <= ? LIMIT ?)"
        )
        deleted: int = self._write(lambda db: db.execute(sql, (now, limit)).rowcount)
        self._write(lambda db: db.execute("DELETE FROM huihua_kv WHERE expires_at <= ?", (now,)))
        return deleted

    def count(self, now: float) -> int:
        sql = f"SELECT count(*) FROM huihua_session WHERE {_LIVE}"
        result: int = self._run(lambda db: db.execute(sql, (now,)).fetchone()[0])
        return result

    # -- small key-value space -----------------------------------------------------------------
    def kv_set(self, key: str, value: str, *, now: float, ttl: float, only_if_absent: bool = False) -> bool:
        def op(db: sqlite3.Connection) -> bool:
            if only_if_absent:
                sql = "SELECT 1 FROM huihua_kv WHERE key = ? AND expires_at > ?"
                if db.execute(sql, (key, now)).fetchone():
                    return False
            db.execute(
                "INSERT INTO huihua_kv (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT (key)"
                " DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
                (key, value, now + ttl),
            )
            return True

        return self._write(op)

    def kv_get(self, key: str, *, now: float) -> str | None:
        sql = "SELECT value FROM huihua_kv WHERE key = ? AND expires_at > ?"
        row = self._run(lambda db: db.execute(sql, (key, now)).fetchone())
        return None if row is None else str(row[0])

    def kv_delete(self, key: str, *, if_value: str | None = None) -> bool:
        sql = "DELETE FROM huihua_kv WHERE key = ? AND (? IS NULL OR value = ?)"
        return self._write(lambda db: db.execute(sql, (key, if_value, if_value)).rowcount) > 0

    def ping(self) -> None:
        self._run(lambda db: db.execute("SELECT 1").fetchone())

    def close(self) -> None:
        with self._guard:
            for db in self._all:
                db.close()
            self._all.clear()
        self._local = threading.local()
