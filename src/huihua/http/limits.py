"""Rate limits and password checks as routes answer them: one 429 shape, one 401/403 shape."""

from __future__ import annotations

from ..accounts.service import InvalidCredentials, TooManyAttempts
from ..accounts.throttle import Limit
from ..accounts.users import User
from ..core.addresses import limit_bucket
from .context import SessionContext
from .errors import ApiError
from .services import Services


async def per_ip_per_minute(svc: Services, ctx: SessionContext, what: str, limit: int, code: str) -> None:
    """Count one `what` from the client's address; 429 `code` once `limit` a minute is reached."""
    throttle, now, key = svc.accounts.throttle, svc.manager.clock.now(), f"{what}:{limit_bucket(ctx.ip)}"
    if wait := await svc.accounts._db(throttle.retry_after, key, now):
        raise ApiError(
            429, code, f"too many {what} from this address; retry in {wait} s", {"Retry-After": str(wait)}
        )
    await svc.accounts._db(throttle.failed, key, Limit(max_failures=limit, window=60.0), now)


async def check_password(
    svc: Services, ctx: SessionContext, username: str, password: str, *, status: int
) -> User:
    """The account, or `status` invalid_credentials (401 to log in, 403 to confirm), or 429."""
    try:
        return await svc.accounts.authenticate(username, password, ip=ctx.ip)
    except TooManyAttempts as exc:
        svc.metrics.logins.labels("password", "throttled").inc()
        raise ApiError(429, "too_many_attempts", str(exc), {"Retry-After": str(exc.retry_after)}) from exc
    except InvalidCredentials as exc:
        svc.metrics.logins.labels("password", "failure").inc()
        svc.manager.emit_login_failed(None, "invalid_credentials")
        raise ApiError(status, "invalid_credentials", "the username or password is wrong") from exc
