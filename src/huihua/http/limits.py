"""Rate limits and password checks as routes answer them: one 429 shape, one 401/403 shape."""

from __future__ import annotations

from ..accounts.service import InvalidCredentials, TooManyAttempts
from ..accounts.throttle import Attempt, Limit
from ..accounts.users import User
from ..core.addresses import limit_bucket
from .context import SessionContext
from .errors import ApiError
from .services import Services


async def per_ip_per_minute(svc: Services, ctx: SessionContext, what: str, limit: int, code: str) -> None:
    """Count one `what` from the client's address; 429 `code` once `limit` a minute is reached.
    Checked and counted in one write, so parallel requests cannot all slip under the limit."""
    attempt = Attempt(f"{what}:{limit_bucket(ctx.ip)}", Limit(max_failures=limit, window=60.0))
    try:
        await svc.accounts._db(svc.accounts.throttle.reserve, [attempt], svc.manager.clock.now())
    except TooManyAttempts as exc:
        wait = exc.retry_after
        raise ApiError(
            429, code, f"too many {what} from this address; retry in {wait} s", {"Retry-After": str(wait)}
        ) from exc


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
            username, password, ip=ctx.ip, user_id=user.id if user is not None else None
        )
    except TooManyAttempts as exc:
        svc.metrics.logins.labels("password", "throttled").inc()
        raise ApiError(429, "too_many_attempts", str(exc), {"Retry-After": str(exc.retry_after)}) from exc
    except InvalidCredentials as exc:
        svc.metrics.logins.labels("password", "failure").inc()
        svc.manager.emit_login_failed(user.id if user is not None else None, "invalid_credentials")
        raise ApiError(status, "invalid_credentials", message) from exc


async def reauthenticate(
    svc: Services, ctx: SessionContext, user: User, password: str, *, message: str = "the password is wrong"
) -> User:
    """The signed-in user proves it is still them (password change, unlinking an identity):
    the same throttled check as a login, 403 on a wrong password."""
    return await check_password(
        svc, ctx, user.username or "", password, status=403, user=user, message=message
    )
