"""How a session looks in an API answer, the same on every host (the service's routes and
Django's `/v1` views): ISO 8601 UTC times, never a token. Framework-neutral, from the stored
record alone, so the two hosts cannot drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .core.record import SessionRecord


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def session_out(record: SessionRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "client": record.client,
        "created_at": iso(record.created_at),
        "last_seen_at": iso(record.timing.last_seen_at),
        "idle_expires_at": iso(record.timing.idle_expires_at),
        "absolute_expires_at": iso(record.timing.absolute_expires_at),
        "expires_at": iso(record.expires_at),  # the earlier of the two: when it ends if left alone
    }


def session_item(record: SessionRecord, current_id: str | None) -> dict[str, Any]:
    """One entry of a session list: where and what the client was, and whether it is this one."""
    return {
        "id": record.id,
        "client": record.client,
        "ip": record.ip,
        "user_agent": record.user_agent,
        "created_at": iso(record.created_at),
        "last_seen_at": iso(record.timing.last_seen_at),
        "absolute_expires_at": iso(record.timing.absolute_expires_at),
        "expires_at": iso(record.expires_at),
        "current": record.id == current_id,
    }
