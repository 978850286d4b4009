"""The per-request view of the session: loaded lazily, issued and ended by routes.

A request that never asks for its session costs no store call. Routes start, rotate and end
sessions through it (`log_in`, `rotate`, `ensure`, `end`), which record what the client must be
told; the middleware turns that into cookies or headers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum

from ..accounts.users import User
from ..core.async_manager import AsyncSessionManager
from ..core.errors import SessionInvalid, SessionRevoked, SessionUnknown
from ..core.session import Session

UserLookup = Callable[[str], Awaitable[User | None]]


async def in_good_standing(manager: AsyncSessionManager, users: UserLookup, session: Session) -> User | None:
    """The session's user, None for a visitor. A user disabled or deleted in the accounts
    database by any path (not only the admin route) loses every session at the next request of
    any of them: all are revoked in the store (the user's epoch moves on), and this one answers
    revoked. Revoked, not blocked: the accounts database stays the truth, so a user enabled
    there again can log in again (the admin route blocks, and its enable unblocks)."""
    if session.user_id is None:
        return None
    user = await users(session.user_id)
    if user is None or user.disabled:
        await manager.revoke_user(session.user_id, reason="user_disabled")
        raise SessionRevoked("this account is disabled")
    return user


class Transport(str, Enum):
    COOKIE = "cookie"  # browsers: HttpOnly cookie, never a token in a body
    HEADER = "header"  # mini programs and backends: Authorization: Bearer, token in JSON


@dataclass
class SessionContext:
    manager: AsyncSessionManager
    transport: Transport
    token: str | None  # as presented; never logged
    client: str
    ip: str | None
    user_agent: str | None
    users: UserLookup | None = field(default=None, repr=False)  # None: no accounts (tests, libraries)
    user: User | None = None  # the loaded session's user, once checked
    touched: bool = False
    issued: Session | None = None
    ended: bool = False
    invalid: bool = False  # the presented token named no usable session
    _loaded: bool = False
    _session: Session | None = None
    _error: SessionInvalid | None = field(default=None, repr=False)

    async def current(self) -> Session | None:
        """The live session, or None (anonymous, or the token was not usable)."""
        self.touched = True
        if self.issued is not None:
            return self.issued
        if not self._loaded:
            self._loaded = True
            if self.token:
                try:
                    session = await self.manager.load(self.token)
                    if self.users is not None:
                        self.user = await in_good_standing(self.manager, self.users, session)
                    self._session = session
                except SessionInvalid as exc:
                    self._error = exc
                    self.invalid = True
        return self._session

    async def optional(self) -> Session | None:
        """The live session; None for a visitor who sent no token; the 401 for a token that was
        sent but is expired, revoked or unknown (the client should know, not become a visitor)."""
        session = await self.current()
        if session is None and self.invalid:
            await self.require()
        return session

    async def require(self) -> Session:
        """The live session, or the 401 that says why there is none."""
        session = await self.current()
        if session is None:
            raise self._error or SessionUnknown("log in first: this request carries no session")
        return session

    async def ensure(self) -> Session:
        """The live session, or a new anonymous one (its token goes back to the client)."""
        session = await self.current()
        if session is None:
            session = await self.manager.create(client=self.client, ip=self.ip, user_agent=self.user_agent)
            self.issue(session)
        return session

    async def log_in(self, user_id: str, *, client: str | None = None) -> Session:
        """Log `user_id` in on this request (the current session, if any, is replaced) and send
        the new token to the client: the one way a route starts a signed-in session."""
        session = await self.manager.login(
            await self.current(),
            user_id,
            client=client or self.client,
            ip=self.ip,
            user_agent=self.user_agent,
        )
        self.issue(session)
        return session

    async def rotate(self, session: Session, *, user_id: str | None = None) -> Session:
        """A new token for `session` (for `user_id` when given, keeping the data), sent to the
        client: the one way a route rotates."""
        if user_id is None or user_id == session.user_id:
            rotated = await self.manager.rotate(session)
        else:
            rotated = await self.manager.rotate(session, user_id=user_id, keep_data=True)
        self.issue(rotated)
        return rotated

    def issue(self, session: Session) -> None:
        """Send `session.token` to the client: a cookie, or X-Session-Token for header clients."""
        assert session.token is not None, "only a newly created or rotated session has a token"
        self.touched = True
        self.issued = session
        self._session = session
        self.ended = False

    def end(self) -> None:
        self.touched = True
        self.ended = True
        self.issued = None
        self._session = None
