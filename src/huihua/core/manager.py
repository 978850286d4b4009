"""SessionManager: every rule of the session contract, over any store, in sync and async twins.

The decisions (new records, expiry checks, when to write activity, what a rotation carries) live
in `ManagerBase` and do no I/O; `SessionManager` and `AsyncSessionManager` only call the store.
`SessionManager`, at the end of this module, is generated from `AsyncSessionManager`
(core/async_manager.py) by scripts/unasync.py: edit that one, then run the script.

(Over 300 lines because the generated `SessionManager` sits at its end, so the module holds the
decisions and one twin; the hand-written part, ManagerBase, is about 130 lines.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Final, Generic, TypeVar

from .clock import Clock, SystemClock
from .data import JSON, DataChanges, apply_changes
from .errors import SessionExpired, SessionGone, SessionInvalid, SessionRevoked, SessionUnknown
from .events import EventSink, SessionEvent, log_event
from .policy import ExpiryPolicy, ExpiryValue
from .record import SessionRecord
from .session import Session
from .store import AsyncStore, Store
from .tokens import fingerprint, is_well_formed, new_session_id, new_token, session_key

DEFAULT_MAX_DATA_BYTES: Final = 64 * 1024
SESSION_LIMIT: Final = "session_limit"
"""The reason of a `revoked` event for a session ended to keep `max_sessions_per_user`."""


class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = _Keep()
"""Rotation argument meaning "the same user as before"."""

S = TypeVar("S", Store, AsyncStore)


class ManagerBase(Generic[S]):
    """`max_sessions_per_user`: a new session of a user beyond it ends their least recently used
    one (a `revoked` event with reason `session_limit:<id>`); None, the default for library
    users, means no cap (the service passes HUIHUA_MAX_SESSIONS_PER_USER).
    `anonymous_max_data_bytes`: the data cap of sessions without a user; None: `max_data_bytes`.
    Visitor timeouts are the policy's (`ExpiryPolicy.anonymous`)."""

    def __init__(
        self,
        store: S,
        *,
        policy: ExpiryPolicy | None = None,
        max_data_bytes: int = DEFAULT_MAX_DATA_BYTES,
        anonymous_max_data_bytes: int | None = None,
        max_sessions_per_user: int | None = None,
        clock: Clock | None = None,
        events: Iterable[EventSink] = (log_event,),
    ) -> None:
        self.store: S = store
        self.policy = policy or ExpiryPolicy()
        self.max_data_bytes = max_data_bytes
        self.anonymous_max_data_bytes = anonymous_max_data_bytes
        self.max_sessions_per_user = max_sessions_per_user
        self.clock = clock or SystemClock()
        self.sinks: list[EventSink] = list(events)

    # -- decisions, no I/O -----------------------------------------------------------------------
    def data_limit(self, user_id: str | None) -> int:
        """The data cap of a session of `user_id` (None: a visitor)."""
        if user_id is None and self.anonymous_max_data_bytes is not None:
            return min(self.max_data_bytes, self.anonymous_max_data_bytes)
        return self.max_data_bytes

    def _new(
        self,
        *,
        user_id: str | None,
        client: str | None,
        ip: str | None,
        user_agent: str | None,
        data: Mapping[str, JSON] | None,
        now: float,
    ) -> tuple[str, SessionRecord]:
        client = client or self.policy.default_client
        token = new_token(user_id)
        initial = DataChanges(set=dict(data or {})).validate()
        record = SessionRecord(
            key=session_key(token),
            id=new_session_id(),
            user_id=user_id,
            client=client,
            created_at=now,
            timing=self.policy.initial_timing(client, now, anonymous=user_id is None),
            ip=ip,
            user_agent=user_agent,
            data=apply_changes({}, initial, max_bytes=self.data_limit(user_id)) if data else {},
        )
        return token, record

    def _key_for(self, token: str) -> str:
        if not isinstance(token, str) or not is_well_formed(token):
            self._emit("invalid_token", reason="malformed")
            raise SessionUnknown("no session for this token")
        return session_key(token)

    def _check(self, record: SessionRecord | None, token: str, now: float) -> SessionRecord:
        if record is None:
            self._emit("invalid_token", reason="unknown", detail=fingerprint(token))
            raise SessionUnknown("no session for this token")
        if record.revoked_at is not None:
            self._emit("invalid_token", record, reason="revoked")
            raise SessionRevoked("this session was logged out or revoked")
        if now >= record.expires_at:
            idle = record.timing.idle_expires_at
            reason = "idle" if idle is not None and idle <= record.timing.absolute_expires_at else "absolute"
            self._emit("expired", record, reason=reason)
            raise SessionExpired(f"this session expired ({reason} timeout)")
        return record

    def _rotated(
        self, session: Session, user_id: str | _Keep | None, now: float, restart: bool
    ) -> tuple[str, SessionRecord]:
        owner = session.user_id if isinstance(user_id, _Keep) else user_id
        token, record = self._new(
            user_id=owner,
            client=session.client,
            ip=session.record.ip,
            user_agent=session.record.user_agent,
            data=None,
            now=now,
        )
        if owner == session.user_id and not restart:  # same principal: the deadlines carry over
            record = replace(record, created_at=session.record.created_at, timing=session.record.timing)
        return token, record

    def _emit(
        self,
        kind: str,
        record: SessionRecord | None = None,
        *,
        reason: str | None = None,
        detail: str | None = None,
        user_id: str | None = None,
    ) -> None:
        event = SessionEvent(
            kind=kind,
            at=self.clock.now(),
            session_id=record.id if record else None,
            user_id=record.user_id if record else user_id,
            client=record.client if record else None,
            reason=reason if detail is None else f"{reason}:{detail}",
        )
        for sink in self.sinks:
            sink(event)

    def _emit_limited(self, user_id: str | None, ended: list[str]) -> None:
        for session_id in ended:
            self._emit("revoked", user_id=user_id, reason=f"{SESSION_LIMIT}:{session_id}")

    def emit_login_failed(self, user_id: str | None, reason: str) -> None:
        """For the accounts layer: failed logins are session lifecycle events too."""
        self._emit("login_failed", user_id=user_id, reason=reason)

    def emit_account_event(
        self, kind: str, user_id: str, reason: str, record: SessionRecord | None = None
    ) -> None:
        """For the accounts layer: `identity_bound`, `identity_unlinked` go to the same sinks
        (log lines, metrics) as the session events. `reason` names things by public id;
        `record` is the session the change was made in, when there is one."""
        self._emit(kind, record, user_id=user_id, reason=reason)


# unasync: generated from core/async_manager.py by scripts/unasync.py: do not edit below this line;
# edit the async twin there, then run `python scripts/unasync.py`.


class SessionManager(ManagerBase[Store]):
    """The store calls of each operation; every decision is `ManagerBase`'s."""

    def create(
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
        ended: list[str] = self.store.create(record, max_per_user=self.max_sessions_per_user)
        self._emit("created", record)
        self._emit_limited(user_id, ended)
        return Session(record, token)

    def load(self, token: str, *, touch: bool = True) -> Session:
        """The live session for `token`, or SessionUnknown / SessionExpired / SessionRevoked."""
        key = self._key_for(token)
        now = self.clock.now()
        record = self._check(self.store.get(key), token, now)
        if touch and self.policy.touch_due(record, now):
            timing = self.policy.touched(record.timing, now)
            touched = self.store.update(key, now, timing=timing, max_bytes=self.data_limit(record.user_id))
            record = touched or self._check(self.store.get(key), token, now)
        return Session(record)

    def get(self, token: str | None, *, touch: bool = True) -> Session | None:
        if not token:
            return None
        try:
            return self.load(token, touch=touch)
        except SessionInvalid:
            return None

    def save(self, session: Session) -> Session:
        """Send what changed; SessionGone if the session died meanwhile (nothing is written)."""
        changes = session.changes().validate()
        if not changes:
            return session
        record = self.store.update(
            session.record.key, self.clock.now(), changes=changes, max_bytes=self.data_limit(session.user_id)
        )
        if record is None:
            raise SessionGone("the session was logged out, rotated or expired meanwhile")
        session._reset(record)
        return session

    def update(
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
        return self.save(session)

    def set_expiry(self, session: Session, value: ExpiryValue) -> Session:
        now = self.clock.now()
        timing = self.policy.with_expiry(session.record, value, now)
        limit = self.data_limit(session.user_id)
        record = self.store.update(session.record.key, now, timing=timing, max_bytes=limit)
        if record is None:
            raise SessionGone("the session was logged out, rotated or expired meanwhile")
        session.record = record
        return session

    def rotate(
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
        rotated = self.store.rotate(
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

    def login(
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
                session = self.rotate(current, user_id=user_id, keep_data=keep_data, restart_lifetime=True)
            except SessionGone:
                session = None
        elif current is not None:
            self.revoke(current)
        if session is None:
            session = self.create(user_id=user_id, client=client, ip=ip, user_agent=user_agent)
        self._emit("login", session.record)
        return session

    def revoke(self, session: Session | str, *, reason: str = "logout") -> bool:
        key = session.record.key if isinstance(session, Session) else self._key_for(session)
        record = self.store.revoke(key, self.clock.now())
        if record is not None:
            self._emit("logout" if reason == "logout" else "revoked", record, reason=reason)
        return record is not None

    def revoke_id(self, user_id: str, session_id: str) -> bool:
        done: bool = self.store.revoke_id(user_id, session_id, self.clock.now())
        if done:
            self._emit("revoked", user_id=user_id, reason=f"id:{session_id}")
        return done

    def revoke_user(self, user_id: str, *, except_id: str | None = None, reason: str = "revoke_all") -> int:
        ids: list[str] = self.store.revoke_user(user_id, self.clock.now(), except_id=except_id)
        for session_id in ids:
            self._emit("revoked", user_id=user_id, reason=f"{reason}:{session_id}")
        return len(ids)

    def set_user_blocked(self, user_id: str, blocked: bool, *, reason: str = "user_disabled") -> int:
        """Block a user (disable): every session of theirs ends now, and none is usable while
        blocked, even one a racing login creates. Unblocking revives none. How many ended."""
        ids: list[str] = self.store.set_user_blocked(user_id, blocked, self.clock.now())
        for session_id in ids:
            self._emit("revoked", user_id=user_id, reason=f"{reason}:{session_id}")
        return len(ids)

    # -- sessions an importer stored under a key-value pointer (Django's legacy keys) ------------
    def pointed_session(self, name: str) -> Session | None:
        """The live session whose store key the key-value entry `name` holds, or None. The record
        is read as stored: no token check, no touch, no event."""
        now = self.clock.now()
        key = self.store.kv_get(name, now=now)
        record = self.store.get(key) if key else None
        return Session(record) if record is not None and record.is_live(now) else None

    def revoke_pointed(self, name: str) -> None:
        """Revoke the session the key-value entry `name` points at, live or not (no event), and
        delete the entry; nothing if there is none."""
        now = self.clock.now()
        key = self.store.kv_get(name, now=now)
        if key:
            self.store.revoke(key, now)
            self.store.kv_delete(name)

    def drop_pointer(self, name: str) -> None:
        """Delete the key-value entry `name` (the session it pointed at stays as it is)."""
        self.store.kv_delete(name)

    def list_user(self, user_id: str) -> list[Session]:
        return [Session(r) for r in self.store.list_user(user_id, self.clock.now())]

    def count(self) -> int:
        result: int = self.store.count(self.clock.now())
        return result

    def purge(self, *, batch_size: int = 1000, max_batches: int | None = None) -> int:
        """Delete expired sessions in short batches; returns how many."""
        total = batches = 0
        while max_batches is None or batches < max_batches:
            removed: int = self.store.purge(self.clock.now(), batch_size)
            total += removed
            batches += 1
            if removed < batch_size:
                break
        return total
