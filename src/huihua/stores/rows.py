"""The row layout shared by the SQL stores (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core.data import dumps, loads
from ..core.record import SessionRecord, Timing

COLUMNS = (
    "key", "id", "user_id", "client", "ip", "user_agent", "created_at", "last_seen_at",
    "idle_timeout", "absolute_expires_at", "expires_at", "persistent", "revoked_at", "version",
    "data",
)  # fmt: skip
SELECT_COLUMNS = ", ".join(COLUMNS)


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
        data=data if isinstance(data, dict) else loads(data),
        revoked_at=revoked,
        version=version,
    )
