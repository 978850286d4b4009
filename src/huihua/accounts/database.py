"""The accounts database: SQLite (the default, beside the sessions) or PostgreSQL.

Queries are written once with `?` placeholders. Calls are synchronous and short; the service
runs SQLite calls inline (`without_waiting`: one that would wait for another process's lock raises
`Busy` and is run again in a worker thread) and PostgreSQL calls in a worker thread (see `Accounts`).
A PostgreSQL statement waits at most `statement_timeout` seconds (5 by default, a lock held by
someone else: 503) unless the database, role or URL `options` set one.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from ..core.errors import StoreUnavailable
from ..core.files import create_private
from ..stores.sqlite import Busy, driver_error

T = TypeVar("T")


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


class Database(Protocol):
    inline: bool  # cheap enough to call on the event loop

    def transaction(self) -> Any: ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def without_waiting(self, fn: Callable[[], T]) -> T:
        """Call `fn` on this thread; where it would wait for another process's lock, raise `Busy`
        before anything is written (an inline database only)."""
        ...

    def lock_schema(self, cur: Cursor) -> None:
        """Inside a transaction: wait until no other process changes the schema (workers that
        start together all run the same CREATE ... IF NOT EXISTS, which can race)."""
        ...

    def add_column(self, cur: Cursor, table: str, column: str, declaration: str) -> None:
        """Inside a transaction: add the column unless it exists."""
        ...

    def close(self) -> None: ...


class _SQLiteCursor:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, tuple(params)).fetchall()


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "database is locked" in str(exc)


class SQLiteDatabase:
    inline = True

    def __init__(self, path: str, *, busy_timeout: float = 5.0) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        # per thread, two connections: the event loop's never waits for a lock, a worker's does
        key = "nowait_db" if getattr(self._local, "nowait", False) else "db"
        db: sqlite3.Connection | None = getattr(self._local, key, None)
        if db is None:
            timeout = 0.0 if key == "nowait_db" else self.busy_timeout
            create_private(self.path)  # password hashes: 0600, and so its -wal and -shm
            db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            setattr(self._local, key, db)
        return db

    def _error(self, exc: sqlite3.Error) -> Exception:
        if getattr(self._local, "nowait", False) and _is_busy(exc):
            return Busy(f"accounts database {self.path}: {exc}")
        return driver_error(f"accounts database {self.path}", exc)

    def without_waiting(self, fn: Callable[[], T]) -> T:
        # Safe to run again: every call is one statement or one BEGIN IMMEDIATE transaction, and
        # SQLITE_BUSY comes before it changed anything (at BEGIN, or the autocommit statement).
        previous = getattr(self._local, "nowait", False)
        self._local.nowait = True
        try:
            return fn()
        finally:
            self._local.nowait = previous

    @contextmanager
    def transaction(self) -> Iterator[_SQLiteCursor]:
        try:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield _SQLiteCursor(db)
            except BaseException:
                if db.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL, ...)
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._db().execute(sql, tuple(params)).fetchall()
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def lock_schema(self, cur: Cursor) -> None:
        pass  # BEGIN IMMEDIATE already excludes every other writer

    def add_column(self, cur: Cursor, table: str, column: str, declaration: str) -> None:
        # SQLite has no ADD COLUMN IF NOT EXISTS; BEGIN IMMEDIATE makes look-then-add safe
        if not any(row[1] == column for row in cur.execute(f"PRAGMA table_info({table})")):
            cur.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    def close(self) -> None:
        for key in ("db", "nowait_db"):
            db = getattr(self._local, key, None)
            if db is not None:
                db.close()


class IntegrityError(Exception):
    """A unique constraint was violated (PostgreSQL's, made to look like sqlite3's)."""


class _PostgresCursor:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self._conn.execute(sql.replace("?", "%s"), tuple(params))
        return cur.fetchall() if cur.description else []


class PostgresDatabase:
    inline = False

    def __init__(self, url: str, *, statement_timeout: float | None = 5.0) -> None:
        from psycopg_pool import ConnectionPool

        from ..stores.postgres import _STATEMENT_TIMEOUT, _timeout_ms  # the session store's rule

        limit = _timeout_ms(statement_timeout)

        def configure(conn: Any) -> None:
            conn.execute(_STATEMENT_TIMEOUT, (limit,))  # autocommit: the setting stays

        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=8,
            timeout=5.0,
            open=True,
            kwargs={"autocommit": True, "connect_timeout": 5},
            configure=configure if limit else None,
        )

    @contextmanager
    def transaction(self) -> Iterator[_PostgresCursor]:
        import psycopg

        try:
            with self._pool.connection() as conn, conn.transaction():
                yield _PostgresCursor(conn)
        except psycopg.errors.UniqueViolation as exc:
            raise IntegrityError(str(exc)) from exc
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise StoreUnavailable(f"accounts database: {exc}") from exc
        except Exception as exc:
            if type(exc).__name__ == "PoolTimeout":
                raise StoreUnavailable("accounts database: no connection available") from exc
            raise

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.transaction() as cur:
            return cur.execute(sql, params)

    def without_waiting(self, fn: Callable[[], T]) -> T:
        raise NotImplementedError("PostgreSQL calls run in a worker thread, never inline")

    def lock_schema(self, cur: Cursor) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('huihua_schema'))")

    def add_column(self, cur: Cursor, table: str, column: str, declaration: str) -> None:
        # look first: ALTER takes an exclusive lock even when it has nothing to do
        if not cur.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = ? AND column_name = ?",
            (table, column),
        ):
            cur.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {declaration}")

    def close(self) -> None:
        self._pool.close()


def database_from_url(url: str) -> SQLiteDatabase | PostgresDatabase:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        from ..stores import sqlite_path

        return SQLiteDatabase(sqlite_path(url)[0])
    if parts.scheme in ("postgres", "postgresql"):
        return PostgresDatabase(url)
    raise ValueError(f"the accounts database must be sqlite:// or postgresql://, not {parts.scheme!r}")


def is_integrity_error(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.IntegrityError | IntegrityError)
