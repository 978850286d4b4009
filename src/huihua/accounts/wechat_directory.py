"""What the WeChat login use case needs from a framework: its users (as `Member`s), identities
and sessions, for one request. The service and Django each implement one of these protocols.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

S = TypeVar("S")
S_co = TypeVar("S_co", covariant=True)


@dataclass(frozen=True)
class Member:
    """A user as the use case sees it; `user` is the framework's own object, for its answer."""

    id: str
    bound: bool  # has a login of its own (username and password), not a WeChat-only placeholder
    active: bool
    user: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Outcome(Generic[S]):
    member: Member
    session: S  # the framework's session object
    token: str = field(repr=False)


class WeChatDirectory(Protocol[S_co]):
    """The framework's side, synchronous (Django). Methods may raise WeChatLoginError."""

    def find_member(self, openid: str) -> Member | None:
        """The user this app's `openid` is tied to, or None."""

    def create_member(self, openid: str) -> Member:
        """A new WeChat-only user (no password) for `openid`."""

    def save_identity(
        self,
        member: Member,
        openid: str,
        unionid: str | None,
        sealed_key: str,
        profile: dict[str, Any] | None,
    ) -> Member:
        """Tie (appid, openid) to `member` unless a parallel first login tied it already; keep the
        sealed session_key (and the profile); the member the identity belongs to now."""

    def start_session(self, member: Member) -> tuple[S_co, str]:
        """Log `member` in on this request: the session and its token."""

    def resume(self, token: str, member_id: str) -> tuple[Member, S_co] | None:
        """The live session of `token` if it still belongs to an active `member_id`, made this
        request's; None when it ended meanwhile."""

    def identity_of(self, member_id: str) -> str | None:
        """The openid of this app tied to `member_id`, or None."""

    def authenticate(self, username: str, password: str) -> Member:
        """The account, after a throttled password check (403 invalid_credentials, 429)."""

    def move_identity(self, openid: str, target: Member) -> None: ...

    def rotate_session(self, target: Member) -> tuple[S_co, str]:
        """This request's session, rotated (and moved to `target` if it is another user)."""

    def retire(self, placeholder: Member, *, bound_to: Member) -> None:
        """End the merged placeholder: revoke its sessions, deactivate it, emit identity_bound."""


class AsyncWeChatDirectory(Protocol[S_co]):
    """The same, awaitable (the service)."""

    async def find_member(self, openid: str) -> Member | None: ...
    async def create_member(self, openid: str) -> Member: ...
    async def save_identity(
        self,
        member: Member,
        openid: str,
        unionid: str | None,
        sealed_key: str,
        profile: dict[str, Any] | None,
    ) -> Member: ...
    async def start_session(self, member: Member) -> tuple[S_co, str]: ...
    async def resume(self, token: str, member_id: str) -> tuple[Member, S_co] | None: ...
    async def identity_of(self, member_id: str) -> str | None: ...
    async def authenticate(self, username: str, password: str) -> Member: ...
    async def move_identity(self, openid: str, target: Member) -> None: ...
    async def rotate_session(self, target: Member) -> tuple[S_co, str]: ...
    async def retire(self, placeholder: Member, *, bound_to: Member) -> None: ...
