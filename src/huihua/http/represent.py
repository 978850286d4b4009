"""How sessions and users look in answers (ISO 8601 UTC times; never a token unless issued)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from ..accounts.users import User
from ..core.session import Session
from .context import SessionContext, Transport


def _iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


def session_out(session: Session) -> dict[str, Any]:
    return {
        "id": session.id,
        "client": session.client,
        "created_at": _iso(session.created_at),
        "last_seen_at": _iso(session.last_seen_at),
        "idle_expires_at": _iso(session.idle_expires_at),
        "absolute_expires_at": _iso(session.absolute_expires_at),
        "expires_at": _iso(session.expires_at),  # the earlier of the two: when it ends if left alone
    }


def session_item(session: Session, current_id: str | None) -> dict[str, Any]:
    return {
        "id": session.id,
        "client": session.client,
        "ip": session.record.ip,
        "user_agent": session.record.user_agent,
        "created_at": _iso(session.created_at),
        "last_seen_at": _iso(session.last_seen_at),
        "absolute_expires_at": _iso(session.absolute_expires_at),
        "expires_at": _iso(session.expires_at),
        "current": session.id == current_id,
    }


def with_token(ctx: SessionContext, body: dict[str, Any]) -> dict[str, Any]:
    """Header clients get a newly issued token in the body too; browsers only in the cookie."""
    if ctx.transport is Transport.HEADER and ctx.issued is not None:
        body["token"] = ctx.issued.token
    return body


def auth_answer(ctx: SessionContext, user: User, session: Session, **extra: Any) -> JSONResponse:
    body = {"user": user.public(), "session": session_out(session), **extra}
    return JSONResponse(with_token(ctx, body))
