"""How sessions and users look in answers (ISO 8601 UTC times; never a token unless issued)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from .. import session_shapes
from ..accounts.users import User
from ..core.session import Session
from .context import SessionContext, Transport


def session_out(session: Session) -> dict[str, Any]:
    return session_shapes.session_out(session.record)


def session_item(session: Session, current_id: str | None) -> dict[str, Any]:
    return session_shapes.session_item(session.record, current_id)


def with_token(ctx: SessionContext, body: dict[str, Any]) -> dict[str, Any]:
    """Header clients get a newly issued token in the body too; browsers only in the cookie."""
    if ctx.transport is Transport.HEADER and ctx.issued is not None:
        body["token"] = ctx.issued.token
    return body


def auth_answer(ctx: SessionContext, user: User, session: Session, **extra: Any) -> JSONResponse:
    body = {"user": user.public(), "session": session_out(session), **extra}
    return JSONResponse(with_token(ctx, body))
