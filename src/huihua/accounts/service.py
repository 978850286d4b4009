"""Accounts as the service uses them: async methods over the synchronous repository.

argon2 runs in a worker thread (it is CPU work by design); SQLite queries run inline (they take
microseconds); PostgreSQL queries run in a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

import anyio.to_thread

from ..core.addresses import limit_bucket
from ..core.clock import Clock, SystemClock
from .database import Database, is_integrity_error
from .passwords import PasswordRejected, check_new_password, hash_password, verify_password
from .throttle import ACCOUNT_LIMIT, IP_LIMIT, Throttle
from .users import InvalidUsername, User, UserRepository, new_user_id, normalize_username

P = ParamSpec("P")
T = TypeVar("T")

__all__ = [
    "Accounts",
    "InvalidCredentials",
    "InvalidUsername",
    "PasswordRejected",
    "TooManyAttempts",
    "UserDisabled",
    "UsernameTaken",
]


class UsernameTaken(Exception):
    code = "username_taken"


class InvalidCredentials(Exception):
    code = "invalid_credentials"


class UserDisabled(InvalidCredentials):
    """Answered exactly like a wrong password, so it tells an attacker nothing."""


class TooManyAttempts(Exception):
    code = "too_many_attempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed attempts; try again in {retry_after} s")
        self.retry_after = retry_after


class Accounts:
    def __init__(self, db: Database, *, clock: Clock | None = None) -> None:
        self.db = db
        self.users = UserRepository(db)
        self.throttle = Throttle(db)
        self.clock = clock or SystemClock()

    async def _db(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self.db.inline:
            return fn(*args, **kwargs)
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))

    async def get(self, user_id: str) -> User | None:
        return await self._db(self.users.by_id, user_id)

    async def register(
        self, username: str, password: str, *, email: str | None = None, phone: str | None = None
    ) -> User:
        name = normalize_username(username)
        check_new_password(password)
        password_hash = await anyio.to_thread.run_sync(hash_password, password)
        now = self.clock.now()
        user = User(new_user_id(), name, email, phone, password_hash, False, now)
        try:
            await self._db(self.users.insert, user, now)
        except Exception as exc:
            if is_integrity_error(exc):
                raise UsernameTaken(f"the username {name!r} is taken") from exc
            raise
        return user

    async def create_wechat_user(self) -> User:
        now = self.clock.now()
        user = User(new_user_id(), None, None, None, None, False, now)
        await self._db(self.users.insert, user, now)
        return user

    async def authenticate(self, username: str, password: str, *, ip: str | None) -> User:
        """The user, or InvalidCredentials (same answer for unknown user, wrong password and
        disabled account) or TooManyAttempts. One argon2 verification whatever the case."""
        now = self.clock.now()
        try:
            name = normalize_username(username)
        except InvalidUsername:
            name = None
        keys = [k for k in (f"ip:{limit_bucket(ip)}" if ip else None, f"acct:{name}" if name else None) if k]
        waits = [await self._db(self.throttle.retry_after, k, now) for k in keys]
        if any(waits):
            raise TooManyAttempts(max(waits))
        user = await self._db(self.users.by_username, name) if name else None
        ok, rehash = await anyio.to_thread.run_sync(
            verify_password, user.password_hash if user else None, password
        )
        if not ok or user is None or user.disabled:
            for key in keys:
                limit = IP_LIMIT if key.startswith("ip:") else ACCOUNT_LIMIT
                await self._db(self.throttle.failed, key, limit, now)
            raise UserDisabled() if ok and user and user.disabled else InvalidCredentials()
        if rehash:
            await self._db(self.users.set_password_hash, user.id, rehash, now)
        if name:
            await self._db(self.throttle.succeeded, f"acct:{name}")
        return user

    async def verify(self, user: User, password: str) -> bool:
        ok, _ = await anyio.to_thread.run_sync(verify_password, user.password_hash, password)
        return ok and user.password_hash is not None

    async def change_password(self, user: User, new_password: str) -> None:
        password_hash = await anyio.to_thread.run_sync(hash_password, new_password)
        await self._db(self.users.set_password_hash, user.id, password_hash, self.clock.now())

    async def set_disabled(self, user_id: str, disabled: bool) -> bool:
        return await self._db(self.users.set_disabled, user_id, disabled, self.clock.now())

    async def set_phone(self, user_id: str, phone: str) -> None:
        await self._db(self.users.set_phone, user_id, phone, self.clock.now())
