"""Lifecycle events: what happened to which session, by public id; never a token."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger("huihua.events")

EVENT_KINDS = frozenset(
    {
        "created",
        "rotated",
        "expired",
        "revoked",
        "login",
        "logout",
        "login_failed",
        "invalid_token",
        "identity_bound",
        "identity_unlinked",
    }
)


@dataclass(frozen=True, slots=True)
class SessionEvent:
    kind: str
    at: float
    session_id: str | None = None
    user_id: str | None = None
    client: str | None = None
    reason: str | None = None  # e.g. "idle", "absolute", "password_changed", "unknown"


EventSink = Callable[[SessionEvent], None]


def log_event(event: SessionEvent) -> None:
    """The default sink: one structured line per event on the `huihua.events` logger."""
    logger.info(
        "session %s id=%s user=%s client=%s reason=%s",
        event.kind,
        event.session_id,
        event.user_id,
        event.client,
        event.reason,
        extra={
            "event": event.kind,
            "session_id": event.session_id,
            "user_id": event.user_id,
            "client": event.client,
            "reason": event.reason,
        },
    )
