"""AsyncSessionManager: the awaitable twin of SessionManager, for the ASGI service and async Django.

The hand-written source of the twins: `SessionManager` (core/manager.py, for Django, scripts and
the CLI) is generated from the class below by scripts/unasync.py. Edit this one, then run it. The
decisions live in `ManagerBase` (core/manager.py) and do no I/O; the twins only call the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .data import JSON
from .errors import SessionGone, SessionInvalid
from .manager import KEEP, ManagerBase, _Keep
from .policy import ExpiryValue
from .session import Session
from .store import AsyncStore

# unasync: source of SessionManager in core/manager.py: everything below.


class AsyncSessionManager(ManagerBase[AsyncStore]):
    """The store calls of each operation; every decision is `ManagerBase`'s."""

    async def create(
        self,
        *,
        user_id: str | None = None,
        client: str | None = None,
        ip: str | None = None,
        user_agent: str | None = None,
        data: Mapping[str, JSON] | None = None,
    ) -> Session:
        token, record = self._new(
            user_id=user_id, client=client, ip=ip, user_agent=user_agent, data=data, now=self.clock.now()
        )
        ended: list[str] = await self.store.create(record, max_per_user=self.max_sessions_per_user)
        self._emit("created", record)
        self._emit_limited(user_id, ended)
        return Session(record, token)

    async def load(self, token: str, *, touch: bool = True) -> Session:
        """The live session for `token`, or SessionUnknown / SessionExpired / SessionRevoked."""
        key = self._key_for(token)
        now = self.clock.now()
        record = self._check(await self.store.get(key), token, now)
        if touch and self.policy.touch_due(record, now):
            timing = self.policy.touched(record.timing, now)
            touched = await self.store.update(
                key, now, timing=timing, max_bytes=self.data_limit(record.user_id)
            )
            record = touched or self._check(await self.store.get(key), token, now)
        return Session(record)

    async def get(self, token: str | None, *, touch: bool = True) -> Session | None:
        if not token:
            return None
        try:
            return await self.load(token, touch=touch)
        except SessionInvalid:
            return None

    async def save(self, session: Session) -> Session:
        """Send what changed; SessionGone if the session died meanwhile (nothing is written)."""
        changes = session.changes().validate()
        if not changes:
            return session
        record = await self.store.update(
            session.record.key, self.clock.now(), changes=changes, max_bytes=self.data_limit(session.user_id)
        )
        if record is None:
            raise SessionGone("the session was logged out, rotated or expired meanwhile")
        session._reset(record)
        return session

    async def update(
        self,
        session: Session,
        *,
        set: Mapping[str, JSON] | None = None,
        unset: Iterable[str] = (),
        incr: Mapping[str, int] | None = None,
    ) -> Session:
        for key, value in (set or {}).items():
            session[key] = value
        for key in unset:
            session.pop(key, None)
        for key, by in (incr or {}).items():
            session.incr(key, by)
        return await self.save(session)

    async def set_expiry(self, session: Session, value: ExpiryValue) -> Session:
        now = self.clock.now()
        timing = self.policy.with_expiry(session.record, value, now)
        limit = self.data_limit(session.user_id)
        record = await self.store.update(session.record.key, now, timing=timing, max_bytes=limit)
        if record is None:
            raise SessionGone("the session was logged out, rotated or expired meanwhile")
        session.record = record
        return session

    async def rotate(
        self,
        session: Session,
        *,
        user_id: str | _Keep | None = KEEP,
        keep_data: bool = True,
        restart_lifetime: bool = False,
    ) -> Session:
        """A new token (and public id) for the session; the old token dies at once. For the same
        user (a privilege or password change) `created_at` and the absolute deadline carry over,
        unless `restart_lifetime` (a new authentication: `login` asks for it, ASVS 7.2.4); a
        session that changes owner always starts a new lifetime, the new owner's."""
        now = self.clock.now()
        token, record = self._rotated(session, user_id, now, restart_lifetime)
        rotated = await self.store.rotate(
            session.record.key,
            record,
            now,
            keep_data=keep_data,
            max_bytes=self.data_limit(record.user_id),
            max_per_user=self.max_sessions_per_user,
        )
        if rotated is None:
            raise SessionGone("the session was logged out, rotated or expired meanwhile")
        created, ended = rotated
        self._emit("rotated", created, reason=session.id)
        self._emit_limited(created.user_id, ended)
        return Session(created, token)

    async def login(
        self,
        current: Session | None,
        user_id: str,
        *,
        client: str | None = None,
        ip: str | None = None,
        user_agent: str | None = None,
        keep_data: bool = True,
    ) -> Session:
        """A fresh token for `user_id`, and a fresh lifetime: logging in again as the same user
        starts a new `created_at` and absolute deadline (ASVS 7.2.4). An anonymous session's data
        (a cart) comes along when `keep_data`; another user's session is never inherited
        (Django's flush on user change)."""
        session: Session | None = None
        if current is not None and current.user_id in (None, user_id):
            try:
                session = await self.rotate(
                    current, user_id=user_id, keep_data=keep_data, restart_lifetime=True
                )
            except SessionGone:
                session = None
        elif current is not None:
            await self.revoke(current)
        if session is None:
            session = await self.create(user_id=user_id, client=client, ip=ip, user_agent=user_agent)
        self._emit("login", session.record)
        return session

    async def revoke(self, session: Session | str, *, reason: str = "logout") -> bool:
        key = session.record.key if isinstance(session, Session) else self._key_for(session)
        record = await self.store.revoke(key, self.clock.now())
        if record is not None:
            self._emit("logout" if reason == "logout" else "revoked", record, reason=reason)
        return record is not None

    async def revoke_id(self, user_id: str, session_id: str) -> bool:
        done: bool = await self.store.revoke_id(user_id, session_id, self.clock.now())
        if done:
            self._emit("revoked", user_id=user_id, reason=f"id:{session_id}")
        return done

    async def revoke_user(
        self, user_id: str, *, except_id: str | None = None, reason: str = "revoke_all"
    ) -> int:
        ids: list[str] = await self.store.revoke_user(user_id, self.clock.now(), except_id=except_id)
        for session_id in ids:
            self._emit("revoked", user_id=user_id, reason=f"{reason}:{session_id}")
        return len(ids)

    async def set_user_blocked(self, user_id: str, blocked: bool, *, reason: str = "user_disabled") -> int:
        """Block a user (disable): every session of theirs ends now, and none is usable while
        blocked, even one a racing login creates. Unblocking revives none. How many ended."""
        ids: list[str] = await self.store.set_user_blocked(user_id, blocked, self.clock.now())
        for session_id in ids:
            self._emit("revoked", user_id=user_id, reason=f"{reason}:{session_id}")
        return len(ids)

    # -- sessions an importer stored under a key-value pointer (Django's legacy keys) ------------
    async def pointed_session(self, name: str) -> Session | None:
        """The live session whose store key the key-value entry `name` holds, or None. The record
        is read as stored: no token check, no touch, no event."""
        now = self.clock.now()
        key = await self.store.kv_get(name, now=now)
        record = await self.store.get(key) if key else None
        return Session(record) if record is not None and record.is_live(now) else None

    async def revoke_pointed(self, name: str) -> None:
        """Revoke the session the key-value entry `name` points at, live or not (no event), and
        delete the entry; nothing if there is none."""
        now = self.clock.now()
        key = await self.store.kv_get(name, now=now)
        if key:
            await self.store.revoke(key, now)
            await self.store.kv_delete(name)

    async def drop_pointer(self, name: str) -> None:
        """Delete the key-value entry `name` (the session it pointed at stays as it is)."""
        await self.store.kv_delete(name)

    async def list_user(self, user_id: str) -> list[Session]:
        return [Session(r) for r in await self.store.list_user(user_id, self.clock.now())]

    async def count(self) -> int:
        result: int = await self.store.count(self.clock.now())
        return result

    async def purge(self, *, batch_size: int = 1000, max_batches: int | None = None) -> int:
        """Delete expired sessions in short batches; returns how many."""
        total = batches = 0
        while max_batches is None or batches < max_batches:
            removed: int = await self.store.purge(self.clock.now(), batch_size)
            total += removed
            batches += 1
            if removed < batch_size:
                break
        return total
