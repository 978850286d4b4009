"""Rate limits and password checks as the routes use them, counted in the service's metrics."""

from __future__ import annotations

from ..accounts.users import User
from ..core.errors import TooManyAttempts, WrongPassword
from .context import SessionContext
from .services import Services


async def per_ip_per_minute(
    svc: Services, ctx: SessionContext, what: str, limit: int, code: str = "too_many_attempts"
) -> None:
    """Count one `what` from the client's address; 429 `code` once `limit` a minute is reached
    (`Accounts.count_per_address`)."""
    await svc.accounts.count_per_address(what, ctx.ip, limit, code=code)


async def check_password(
    svc: Services,
    ctx: SessionContext,
    username: str,
    password: str,
    *,
    status: int,
    user: User | None = None,
    message: str = "the username or password is wrong",
) -> User:
    """The account, or `status` invalid_credentials (401 to log in, 403 to confirm), or 429.
    With `user`, a re-authentication: the password must be that signed-in user's."""
    try:
        return await svc.accounts.authenticate(
            username,
            password,
            ip=ctx.ip,
            user_id=user.id if user is not None else None,
            refusal=WrongPassword(message, status=status),
        )
    except TooManyAttempts:
        svc.metrics.logins.labels("password", "throttled").inc()
        raise
    except WrongPassword:
        svc.metrics.logins.labels("password", "failure").inc()
        svc.manager.emit_login_failed(user.id if user is not None else None, "invalid_credentials")
        raise


async def reauthenticate(
    svc: Services, ctx: SessionContext, user: User, password: str, *, message: str = "the password is wrong"
) -> User:
    """The signed-in user proves it is still them (password change, unlinking an identity):
    the same throttled check as a login, 403 on a wrong password."""
    return await check_password(
        svc, ctx, user.username or "", password, status=403, user=user, message=message
    )
