"""Password login and account changes, for any framework: they raise domain errors
(`core/errors.py`), the framework turns them into answers (`core.errors.answer`).

What a route does with a password goes through here: registering (limited per client address),
logging in, re-authenticating the signed-in user, changing the password (every other session
ends, optionally every linked WeChat identity is unlinked), unlinking one identity. Every password
check is `Accounts.authenticate`: throttled per account and per address, one argon2 verification.
The framework hands in the session it has and the client's address, and delivers the session it
gets back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..core.async_manager import AsyncSessionManager
from ..core.errors import IdentityNotFound, LastSignInMethod, TooManyAttempts, WrongPassword
from ..core.session import Session
from .service import Accounts
from .users import User

Observe = Callable[[str], None]  # "success", "failure" or "throttled", for metrics


class Sessions(Protocol):
    """The framework's sessions for one request: starting or rotating one also delivers its new
    token to the client (the service's `SessionContext`)."""

    async def log_in(self, user_id: str) -> Session: ...

    async def rotate(self, session: Session) -> Session: ...


class PasswordAccounts:
    def __init__(
        self, accounts: Accounts, manager: AsyncSessionManager, *, observe: Observe | None = None
    ) -> None:
        self.accounts = accounts
        self.manager = manager
        self.observe = observe or (lambda _: None)

    async def register(
        self,
        username: str,
        password: str,
        *,
        email: str | None,
        phone: str | None,
        ip: str | None,
        per_minute: int,
    ) -> User:
        """A new account. Each costs an argon2 hash: `per_minute` from one client address."""
        await self.accounts.count_per_address("registrations", ip, per_minute)
        return await self.accounts.register(username, password, email=email, phone=phone)

    async def check_password(
        self,
        username: str,
        password: str,
        *,
        ip: str | None,
        user: User | None = None,
        refusal: WrongPassword | None = None,
    ) -> User:
        """The account, or WrongPassword (`refusal`, else 401) or TooManyAttempts. With `user`,
        a re-authentication: the password must be that signed-in user's."""
        try:
            return await self.accounts.authenticate(
                username, password, ip=ip, user_id=user.id if user is not None else None, refusal=refusal
            )
        except TooManyAttempts:
            self.observe("throttled")
            raise
        except WrongPassword:
            self.observe("failure")
            self.manager.emit_login_failed(user.id if user is not None else None, "invalid_credentials")
            raise

    async def reauthenticate(self, user: User, password: str, *, ip: str | None, message: str) -> None:
        """The signed-in user proves it is still them: a 403 on a wrong password."""
        refusal = WrongPassword(message, status=403)
        await self.check_password(user.username or "", password, ip=ip, user=user, refusal=refusal)

    async def log_in(
        self, sessions: Sessions, username: str, password: str, *, ip: str | None
    ) -> tuple[User, Session]:
        """The user and a new session for them (the current one, if any, is replaced)."""
        user = await self.check_password(username, password, ip=ip)
        session = await sessions.log_in(user.id)
        self.observe("success")
        return user, session

    async def change_password(
        self,
        sessions: Sessions,
        session: Session,
        user: User,
        current_password: str,
        new_password: str,
        *,
        ip: str | None,
        unlink_identities: bool,
    ) -> Session:
        """Change the password (the current one is checked like a login); every other session
        ends; the session is rotated (its new token delivered). With `unlink_identities`, every linked WeChat
        identity is unlinked too: whoever learned the old password and bound their own WeChat
        is out."""
        await self.reauthenticate(user, current_password, ip=ip, message="the current password is wrong")
        await self.accounts.change_password(user, new_password)
        if unlink_identities:
            await self.unlink(user)
        # rotate first: the new session is then surely indexed, so "all but this one" keeps it
        # even where the index had been lost (an evicting Redis)
        rotated = await sessions.rotate(session)
        await self.manager.revoke_user(user.id, except_id=rotated.id, reason="password_changed")
        return rotated

    async def unlink_identity(
        self, session: Session, user: User, identity_id: str, password: str, *, ip: str | None
    ) -> None:
        """Remove a linked identity after re-entering the password. Every other session of the
        account ends too: sessions do not record which identity opened them, so this is the
        only way to be sure none opened through it survives."""
        if identity_id not in {i.id for i in await self.accounts.linked_identities(user.id)}:
            raise IdentityNotFound("no identity linked to your account has this id")
        if user.password_hash is None:
            raise LastSignInMethod(
                "this account has no password: removing its WeChat identity would leave no way to sign in"
            )
        await self.reauthenticate(user, password, ip=ip, message="the password is wrong")
        if await self.unlink(user, identity_id):
            await self.manager.revoke_user(user.id, except_id=session.id, reason="identity_unlinked")

    async def unlink(self, user: User, identity_id: str | None = None) -> list[str]:
        """Unlink one identity of the user (or all), one `identity_unlinked` event each."""
        removed = await self.accounts.unlink_identities(user.id, identity_id)
        for public_id in removed:
            self.manager.emit_account_event("identity_unlinked", user.id, f"wechat:{public_id}")
        return removed
