"""Accounts as the service uses them: async methods over the synchronous repository.

argon2 runs in a worker thread (it is CPU work by design); SQLite queries run inline (they take
microseconds) unless another process holds the file's lock, then in a worker thread that waits
for it (the event loop never does); PostgreSQL queries run in a worker thread. A password check
runs whole in a worker thread: the throttle's reservation, the lookup, argon2 and the release.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import anyio.to_thread

from ..core.addresses import limit_bucket
from ..core.clock import Clock, SystemClock
from ..core.errors import InvalidUsername, PasswordRejected, TooManyAttempts, UsernameTaken, WrongPassword
from ..stores.sqlite import Busy
from .database import Database, is_integrity_error
from .passwords import check_new_password, hash_password, verify_password
from .throttle import Attempt, Limit, Throttle, password_attempts
from .users import User, UserRepository, new_user_id, normalize_username
from .wechat_identities import LinkedIdentity, WeChatIdentities, WeChatIdentity

P = ParamSpec("P")
T = TypeVar("T")

__all__ = [
    "Accounts",
    "InvalidUsername",
    "PasswordRejected",
    "TooManyAttempts",
    "UsernameTaken",
    "WrongPassword",
]


class Accounts:
    def __init__(self, db: Database, *, clock: Clock | None = None) -> None:
        self.db = db
        self.users = UserRepository(db)
        self.throttle = Throttle(db)
        self.identities = WeChatIdentities(db)
        self.clock = clock or SystemClock()

    async def _db(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self.db.inline:
            try:
                return self.db.without_waiting(lambda: fn(*args, **kwargs))
            except Busy:
                pass  # the file is locked: wait for it (up to the busy timeout) off the loop
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

    async def discard_wechat_user(self, user_id: str) -> None:
        """Undo `create_wechat_user` for a first login that a parallel one won (see users.py)."""
        await self._db(self.users.delete_placeholder, user_id)

    async def create_wechat_user(self) -> User:
        now = self.clock.now()
        user = User(new_user_id(), None, None, None, None, False, now)
        await self._db(self.users.insert, user, now)
        return user

    async def authenticate(
        self,
        username: str,
        password: str,
        *,
        ip: str | None,
        user_id: str | None = None,
        refusal: WrongPassword | None = None,
    ) -> User:
        """The user, or WrongPassword (same answer for unknown user, wrong password and
        disabled account; `refusal` when given, else a 401) or TooManyAttempts. One argon2
        verification whatever the case.

        The only password check there is: every route that takes a password (login, bind,
        password change, unlinking an identity) comes here, so every one is throttled per
        account and per address. `user_id`, for re-authentication, also requires the
        account to be that user."""
        user = await anyio.to_thread.run_sync(self._authenticate, username, password, ip, user_id)
        if user is None:
            raise refusal or WrongPassword()
        return user

    async def count_per_address(
        self, what: str, ip: str | None, per_minute: int, *, code: str = "too_many_attempts"
    ) -> None:
        """Count one `what` (registrations, WeChat logins, new sessions) from the client's
        address; raise TooManyAttempts (429 `code`) once `per_minute` is reached. Checked and
        counted in one write, so parallel requests cannot all slip under the limit."""
        attempt = Attempt(f"{what}:{limit_bucket(ip)}", Limit(max_failures=per_minute, window=60.0))
        try:
            await self._db(self.throttle.reserve, [attempt], self.clock.now())
        except TooManyAttempts as exc:
            wait = exc.retry_after
            message = f"too many {what} from this address; retry in {wait} s"
            raise TooManyAttempts(wait, message, code=code) from exc

    def _authenticate(self, username: str, password: str, ip: str | None, user_id: str | None) -> User | None:
        try:
            name: str | None = normalize_username(username)
        except InvalidUsername:
            name = None

        def check() -> User | None:
            user = self.users.by_username(name) if name else None
            ok, rehash = verify_password(user.password_hash if user else None, password)
            if not ok or user is None or user.disabled or (user_id is not None and user.id != user_id):
                return None
            if rehash:
                self.users.set_password_hash(user.id, rehash, self.clock.now())
            return user

        # argon2 and the queries run together in this worker thread, under one reservation
        return self.throttle.guarded(password_attempts(name, ip), check, self.clock.now())

    async def change_password(self, user: User, new_password: str) -> None:
        password_hash = await anyio.to_thread.run_sync(hash_password, new_password)
        await self._db(self.users.set_password_hash, user.id, password_hash, self.clock.now())

    async def set_disabled(self, user_id: str, disabled: bool) -> bool:
        return await self._db(self.users.set_disabled, user_id, disabled, self.clock.now())

    async def set_phone(self, user_id: str, phone: str) -> None:
        await self._db(self.users.set_phone, user_id, phone, self.clock.now())

    async def ping(self) -> None:
        """Raise if the accounts database does not answer (readiness)."""
        await self._db(self.db.execute, "SELECT 1")

    async def count_users(self) -> int:
        return await self._db(self.users.count)

    # -- WeChat identities (the WeChat login use case's directory) ------------------------------
    async def wechat_user(self, appid: str, openid: str) -> User | None:
        """The user this WeChat identity logs in as, None for a stranger."""
        identity = await self._db(self.identities.find, appid, openid)
        return await self.get(identity.user_id) if identity else None

    async def wechat_openid_of(self, appid: str, user_id: str) -> str | None:
        identity = await self._db(self.identities.of_user, appid, user_id)
        return identity.openid if identity else None

    async def link_wechat(self, identity: WeChatIdentity, profile: dict[str, Any] | None) -> User | None:
        """Record a WeChat login of `identity` (tied to `identity.user_id` if it is new), with its
        verified profile; the user it logs in as now. A parallel first login may have tied it
        first: then the user made for this one (`create_wechat_user`) goes."""
        now = self.clock.now()
        await self._db(self.identities.upsert, identity, now)
        if profile is not None:
            text = json.dumps(profile, ensure_ascii=False)
            await self._db(self.identities.set_profile, identity.appid, identity.openid, text, now)
        owner = await self.wechat_user(identity.appid, identity.openid)
        if owner is not None and owner.id != identity.user_id:
            await self.discard_wechat_user(identity.user_id)
        return owner

    async def move_wechat_identity(self, appid: str, openid: str, user_id: str) -> None:
        """Bind the identity to another user (a new binding: `bound_at` starts again)."""
        await self._db(self.identities.move, appid, openid, user_id, self.clock.now())

    async def linked_identities(self, user_id: str) -> list[LinkedIdentity]:
        return await self._db(self.identities.linked, user_id)

    async def unlink_identities(self, user_id: str, identity_id: str | None = None) -> list[str]:
        """Unlink one identity of the user, or all of them; the public ids unlinked."""
        return await self._db(self.identities.unlink, user_id, identity_id)
