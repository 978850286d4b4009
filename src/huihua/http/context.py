"""The per-request view of the session: loaded lazily, issued and ended by routes.

A request that never asks for its session costs no store call. Routes say what happened
(`issue` a new token, `end` the session); the middleware turns that into cookies or headers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from ..core.async_manager import AsyncSessionManager
from ..core.errors import SessionInvalid, SessionUnknown
from ..core.session import Session


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
                    self._session = await self.manager.load(self.token)
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
