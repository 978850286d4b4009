"""The SQL of the session stores, written once for SQLite and PostgreSQL.

Every statement is written here once, with `?` placeholders (as `accounts/database.py` writes
its SQL); the few places where the two dialects differ are the named fields of `Dialect`.
`statements(dialect)` renders the whole set once, at import: `SQLITE` and `POSTGRES` are what the
drivers run, and nothing is translated per call. The drivers (`sqlite.py`, `postgres.py`) keep
only what truly differs: connections or pools, transactions and locking, error mapping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .rows import COLUMNS, SELECT_COLUMNS


@dataclass(frozen=True)
class Dialect:
    placeholder: str  # what `?` becomes
    text: str
    real: str
    integer: str  # 64 bits
    boolean: str
    false: str
    table_options: str  # after a table's closing parenthesis
    add_column: str  # ALTER TABLE ... <add_column> <name> <declaration>
    no_limit: str  # LIMIT <no_limit> OFFSET n: every row after the first n
    is_distinct: str  # `a <is_distinct> b`: NULL-safe inequality
    for_update: str  # appended to a read that the transaction is about to change
    skip_locked: str  # appended to a read of rows to delete that others may hold
    text_cast: str  # a parameter only compared with IS NULL must still have a type


SQLITE_DIALECT = Dialect(
    placeholder="?",
    text="TEXT",
    real="REAL",
    integer="INTEGER",
    boolean="INTEGER",
    false="0",
    table_options=" WITHOUT ROWID",
    add_column="ADD COLUMN",  # no IF NOT EXISTS: the driver looks first, under BEGIN IMMEDIATE
    no_limit="-1",
    is_distinct="IS NOT",
    for_update="",  # BEGIN IMMEDIATE already holds the only write lock
    skip_locked="",
    text_cast="",
)

POSTGRES_DIALECT = Dialect(
    placeholder="%s",
    text="text",
    real="double precision",
    integer="bigint",
    boolean="boolean",
    false="false",
    table_options="",
    add_column="ADD COLUMN IF NOT EXISTS",
    no_limit="ALL",
    is_distinct="IS DISTINCT FROM",
    for_update=" FOR UPDATE",  # the row lock: one rotation wins, parallel writers serialize
    skip_locked=" FOR UPDATE SKIP LOCKED",  # purging never waits on a request's row lock
    text_cast="::text",
)


@dataclass(frozen=True)
class Statements:
    """Every statement of the SQL stores, in one dialect."""

    schema: tuple[str, ...]  # CREATE ... IF NOT EXISTS, in order
    add_epoch: str  # databases made before the per-user mark: every session counts as epoch 0
    insert: str
    beyond_cap: str
    get: str
    live: str
    write: str
    touch: str
    tombstone: str
    revoke_id: str
    mark_ensure: str
    mark_read: str
    mark_write: str
    mark_keep: str
    tombstone_user: str
    list_user: str
    purge: str
    purge_kv: str
    count: str
    kv_set: str
    kv_set_if_absent: str
    kv_get: str
    kv_delete: str
    ping: str


# the per-user mark (see core/store.py): a user session is live only while its epoch is the mark's
FRESH = (
    "(user_id IS NULL OR epoch = coalesce((SELECT CASE WHEN m.blocked THEN -1 ELSE m.epoch END"
    " FROM huihua_user_mark m WHERE m.user_id = huihua_session.user_id), 0))"
)  # blocked: -1, which no session carries
JOINED = (
    "SELECT " + ", ".join(f"s.{c}" for c in COLUMNS) + ", s.epoch, m.epoch, m.blocked, m.changed_at"
    " FROM huihua_session s LEFT JOIN huihua_user_mark m ON m.user_id = s.user_id"
)  # rows for rows.decode_marked
LIVE = f"revoked_at IS NULL AND expires_at > ? AND {FRESH}"
TOMBSTONE = "UPDATE huihua_session SET revoked_at = ?, data = '{}', version = version + 1"
TIMING = "last_seen_at = ?, idle_timeout = ?, absolute_expires_at = ?, expires_at = ?, persistent = ?"
KV_SET = (
    "INSERT INTO huihua_kv (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT (key)"
    " DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at"
)


def _schema(d: Dialect) -> tuple[str, ...]:
    session = (
        "key {text} PRIMARY KEY, id {text} NOT NULL UNIQUE, user_id {text}, client {text} NOT NULL,"
        " ip {text}, user_agent {text}, created_at {real} NOT NULL, last_seen_at {real} NOT NULL,"
        " idle_timeout {real}, absolute_expires_at {real} NOT NULL, expires_at {real} NOT NULL,"
        " persistent {boolean} NOT NULL, revoked_at {real}, version {integer} NOT NULL,"
        " data {text} NOT NULL, epoch {integer} NOT NULL DEFAULT 0"
    )
    mark = (
        "user_id {text} PRIMARY KEY, epoch {integer} NOT NULL, blocked {boolean} NOT NULL,"
        " changed_at {real} NOT NULL"
    )
    kv = "key {text} PRIMARY KEY, value {text} NOT NULL, expires_at {real} NOT NULL"
    types = {"text": d.text, "real": d.real, "integer": d.integer, "boolean": d.boolean}
    return (
        f"CREATE TABLE IF NOT EXISTS huihua_session ({session.format(**types)}){d.table_options}",
        "CREATE INDEX IF NOT EXISTS huihua_session_expires ON huihua_session (expires_at)",
        "CREATE INDEX IF NOT EXISTS huihua_session_user ON huihua_session (user_id, created_at)"
        " WHERE user_id IS NOT NULL AND revoked_at IS NULL",
        f"CREATE TABLE IF NOT EXISTS huihua_user_mark ({mark.format(**types)}){d.table_options}",
        f"CREATE TABLE IF NOT EXISTS huihua_kv ({kv.format(**types)}){d.table_options}",
    )


def statements(d: Dialect) -> Statements:
    """Render every statement in `d`, once."""
    values = ", ".join(["?"] * len(COLUMNS))
    q = _placeholders(d)
    return Statements(
        schema=_schema(d),
        add_epoch=q(f"ALTER TABLE huihua_session {d.add_column} epoch {d.integer} NOT NULL DEFAULT 0"),
        # a session, stamped with its user's epoch read in the same statement
        insert=q(
            f"INSERT INTO huihua_session ({SELECT_COLUMNS}, epoch) VALUES ({values},"
            " coalesce((SELECT epoch FROM huihua_user_mark WHERE user_id = ?), 0))"
        ),
        # the live others of a user beyond the newest `cap - 1`: what a new session pushes out
        beyond_cap=q(
            f"{TOMBSTONE} WHERE key IN (SELECT key FROM huihua_session WHERE user_id = ? AND key <> ?"
            f" AND {LIVE} ORDER BY last_seen_at DESC, created_at DESC, id DESC"
            f" LIMIT {d.no_limit} OFFSET ?) RETURNING id"
        ),
        get=q(f"{JOINED} WHERE s.key = ?"),
        live=q(f"SELECT {SELECT_COLUMNS} FROM huihua_session WHERE key = ? AND {LIVE}{d.for_update}"),
        write=q(f"UPDATE huihua_session SET data = ?, {TIMING}, version = version + 1 WHERE key = ?"),
        # activity without a read-modify-write: one conditional UPDATE, data untouched
        touch=q(
            f"UPDATE huihua_session SET {TIMING}, version = version + 1 WHERE key = ? AND {LIVE}"
            f" RETURNING {SELECT_COLUMNS}"
        ),
        tombstone=q(f"{TOMBSTONE} WHERE key = ?"),
        revoke_id=q(f"{TOMBSTONE} WHERE user_id = ? AND id = ? AND {LIVE}"),
        mark_ensure=q(
            "INSERT INTO huihua_user_mark (user_id, epoch, blocked, changed_at)"
            f" VALUES (?, 0, {d.false}, ?) ON CONFLICT (user_id) DO NOTHING"
        ),
        mark_read=q(f"SELECT epoch, blocked FROM huihua_user_mark WHERE user_id = ?{d.for_update}"),
        mark_write=q("UPDATE huihua_user_mark SET epoch = ?, blocked = ?, changed_at = ? WHERE user_id = ?"),
        mark_keep=q(
            "UPDATE huihua_session SET epoch = ? WHERE user_id = ? AND id = ? AND revoked_at IS NULL"
            " AND expires_at > ? AND epoch = ?"
        ),
        tombstone_user=q(
            f"{TOMBSTONE} WHERE user_id = ? AND id {d.is_distinct} ? AND revoked_at IS NULL"
            " AND expires_at > ? RETURNING id, epoch"
        ),
        list_user=q(
            f"SELECT {SELECT_COLUMNS} FROM huihua_session WHERE user_id = ? AND {LIVE}"
            " ORDER BY created_at, id"
        ),
        # one short statement per batch; the outer condition is re-checked on the row as it is
        # when deleted (a touch wins)
        purge=q(
            "DELETE FROM huihua_session WHERE key IN (SELECT key FROM huihua_session"
            f" WHERE expires_at <= ? ORDER BY expires_at LIMIT ?{d.skip_locked}) AND expires_at <= ?"
        ),
        purge_kv=q("DELETE FROM huihua_kv WHERE expires_at <= ?"),
        count=q(f"SELECT count(*) FROM huihua_session WHERE {LIVE}"),
        kv_set=q(KV_SET),
        # a live holder keeps it: the row lock (or SQLite's write lock) makes this a fair race
        kv_set_if_absent=q(f"{KV_SET} WHERE huihua_kv.expires_at <= ?"),
        kv_get=q("SELECT value FROM huihua_kv WHERE key = ? AND expires_at > ?"),
        kv_delete=q(f"DELETE FROM huihua_kv WHERE key = ? AND (?{d.text_cast} IS NULL OR value = ?)"),
        ping=q("SELECT 1"),
    )


def _placeholders(d: Dialect) -> Callable[[str], str]:
    """`?` becomes the dialect's placeholder (no statement holds a literal `?` or `%`)."""
    return lambda sql: sql.replace("?", d.placeholder)


SQLITE = statements(SQLITE_DIALECT)
POSTGRES = statements(POSTGRES_DIALECT)
