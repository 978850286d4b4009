"""The row layout shared by the SQL stores (SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..core.data import dumps, loads
from ..core.record import SessionRecord, Timing

COLUMNS = (
    "key", "id", "user_id", "client", "ip", "user_agent", "created_at", "last_seen_at",
    "idle_timeout", "absolute_expires_at", "expires_at", "persistent", "revoked_at", "version",
    "data",
)  # fmt: skip
SELECT_COLUMNS = ", ".join(COLUMNS)
security_log = logging.getLogger("huihua.security")


def record_to_row(record: SessionRecord) -> tuple[Any, ...]:
    t = record.timing
    return (
        record.key, record.id, record.user_id, record.client, record.ip, record.user_agent,
        record.created_at, t.last_seen_at, t.idle_timeout, t.absolute_expires_at, t.expires_at,
        t.persistent, record.revoked_at, record.version, dumps(dict(record.data)),
    )  # fmt: skip


def row_to_record(row: Sequence[Any]) -> SessionRecord:
    (key, id_, user_id, client, ip, ua, created, seen, idle, absolute, _expires, persistent,
     revoked, version, data) = row  # fmt: skip
    return SessionRecord(
        key=key,
        id=id_,
        user_id=user_id,
        client=client,
        created_at=created,
        timing=Timing(seen, idle, absolute, bool(persistent)),
        ip=ip,
        user_agent=ua,
        data=_object(data if isinstance(data, dict) else loads(data)),
        revoked_at=revoked,
        version=version,
    )


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise TypeError(f"session data is a JSON {type(data).__name__}, not an object")
    return data


def decode_row(row: Sequence[Any]) -> SessionRecord | None:
    """A stored row, or None when it is corrupt: no session is served from it (the client gets
    `not_authenticated` and logs in again), the process carries on, and the security log says so."""
    try:
        return row_to_record(row)
    except (ValueError, TypeError, RecursionError) as exc:
        security_log.error("corrupt session record id=%s ignored: %s", row[1], exc)
        return None


# -- the per-user mark (see core/store.py) ---------------------------------------------------
def insert_args(record: SessionRecord) -> tuple[Any, ...]:
    """The parameters of `sql.Statements.insert`."""
    return (*record_to_row(record), record.user_id)


def decode_marked(row: Sequence[Any]) -> SessionRecord | None:
    """A row of `sql.JOINED`: a user session whose epoch is not its user's, or whose user is
    blocked, is reported as the tombstone it is (revoked when the mark last changed)."""
    record = decode_row(row[: len(COLUMNS)])
    epoch, mark_epoch, blocked, changed_at = row[len(COLUMNS) :]
    if record is None or record.user_id is None or record.revoked_at is not None:
        return record
    if not blocked and epoch == (mark_epoch or 0):
        return record
    return replace(record, data={}, revoked_at=float(changed_at or 0.0))
