"""Django's session engine on huihua: `SESSION_ENGINE = "huihua.contrib.django.session"`.

`request.session` keeps Django's API (and its `a…` twins, awaited natively on
AsyncSessionManager); underneath, the rules are huihua's:

- the `session_key` Django sees is the huihua token; the store keeps only its hash;
- an unknown, expired or revoked key loads as an empty session and creates nothing;
- `save()` sends only the keys that changed, so parallel requests do not undo each other, and a
  save after a concurrent `delete()` raises `UpdateError` (the middleware's SessionInterrupted);
- `cycle_key()` is an atomic rotation; when `_auth_user_id` (set by `django.contrib.auth.login`)
  changes, the save rotates the session to that user, which files it in the user's index;
- `set_expiry()` keeps Django's `_session_expiry` key and becomes huihua's idle/absolute deadlines
  on save (seconds: idle timeout; datetime/timedelta: a fixed end; 0: browser close);
- `clear_expired()` is the store's batched purge.

(Over 300 lines because Django's API comes in sync and async twins that must sit side by side
to stay alike; the steps they share are the no-I/O methods above them.)
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, Final

from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError
from django.utils import timezone

from ...core.data import JSON, dumps, loads
from ...core.errors import SessionGone, SessionInvalid
from ...core.policy import ExpiryValue
from ...core.record import SessionRecord
from ...core.session import Session
from ...core.tokens import new_token
from . import legacy
from .conf import async_manager, legacy_sessions_enabled, manager

AUTH_USER_KEY: Final = "_auth_user_id"  # django.contrib.auth.SESSION_KEY
EXPIRY_KEY: Final = "_session_expiry"  # where SessionBase.set_expiry keeps its value

_GONE = "the session was deleted (logged out, rotated or expired) before this request saved it"


class _Unchanged:
    pass


UNCHANGED: Final = _Unchanged()


def _copy(data: Any) -> dict[str, JSON]:
    """A private deep copy: stores may hand out shared objects."""
    result: dict[str, JSON] = loads(dumps(dict(data)))
    return result


def _user_of(data: dict[str, Any]) -> str | None:
    value = data.get(AUTH_USER_KEY)
    return None if value is None else str(value)


def _expiry_value(raw: Any) -> ExpiryValue:
    """Django's stored `_session_expiry` (seconds, ISO datetime, 0, absent) as huihua's value."""
    if raw is None:
        return None
    if isinstance(raw, str):
        moment = datetime.fromisoformat(raw)
        if timezone.is_naive(moment):  # USE_TZ=False: Django's naive times are local time
            moment = timezone.make_aware(moment, timezone.get_default_timezone())
        return moment
    return float(raw)


class SessionStore(SessionBase):
    def __init__(self, session_key: str | None = None) -> None:
        super().__init__(session_key)
        # Request metadata, set by huihua's middleware before the first access.
        self.client: str | None = None
        self.ip: str | None = None
        self.user_agent: str | None = None
        self._record: SessionRecord | None = None
        self._loaded: dict[str, JSON] = {}  # the data as read: what save() diffs against
        self._cleared = False

    @property
    def record(self) -> SessionRecord | None:
        """The stored session behind this object once loaded or saved (public id, deadlines)."""
        return self._record

    # -- state transitions, no I/O -------------------------------------------------------------
    def _forget(self) -> dict[str, JSON]:
        self._session_key = None
        self._record = None
        self._loaded = {}
        return {}

    def _loaded_from(self, session: Session) -> dict[str, JSON]:
        if session.token is not None:
            self._session_key = session.token
        self._record = session.record
        self._loaded = _copy(session.record.data)
        return _copy(session.record.data)

    def _rotated_to(self, session: Session) -> None:
        # `_loaded` stays: local changes are still relative to what this request read.
        self._session_key = session.token
        self._record = session.record

    def _created(self, session: Session, data: dict[str, Any]) -> None:
        self._session_key = session.token
        self._record = session.record
        self._loaded = _copy(data)
        self._cleared = False
        self._session_cache = data
        self.modified = True

    def _saved(self, record: SessionRecord, data: dict[str, Any]) -> None:
        self._record = record
        self._loaded = _copy(record.data)
        self._cleared = False
        # Keys other requests set meanwhile come in, so the next save does not remove them.
        data.clear()
        data.update(_copy(record.data))

    def _pending(self, record: SessionRecord, data: dict[str, Any]) -> tuple[Session, Any]:
        """The core session holding this request's changes, and the new expiry (or UNCHANGED)."""
        core = Session(replace(record, data=self._loaded))
        if self._cleared:
            core.clear()
        for key in [k for k in core if k not in data]:
            del core[key]
        for key, value in data.items():
            core[key] = value
        before = self._loaded.get(EXPIRY_KEY)
        after = data.get(EXPIRY_KEY)
        expiry = UNCHANGED if dumps(before) == dumps(after) else _expiry_value(after)
        return core, expiry

    @staticmethod
    def _new_expiry(data: dict[str, Any]) -> Any:
        return _expiry_value(data[EXPIRY_KEY]) if EXPIRY_KEY in data else UNCHANGED

    def _get_new_session_key(self) -> str:
        return new_token(None)  # tokens are minted by the manager; this is never stored

    async def _aget_new_session_key(self) -> str:
        return new_token(None)

    def clear(self) -> None:
        super().clear()
        self._cleared = True

    def _is_legacy(self, key: str | None) -> bool:
        return legacy.is_legacy_key(key) and legacy_sessions_enabled()

    # -- Django's API: each sync method with its async twin right after it ---------------------
    # The twins run the same steps, the async one awaited on AsyncSessionManager; they differ in
    # nothing else (Django's own pairs are written this way, and cannot be generated: `load` /
    # `aload` are different names of one API, not one name in two modules).
    def load(self) -> dict[str, Any]:
        key = self.session_key
        if key is None:
            return {}
        if self._is_legacy(key):
            return self._load_legacy(key)
        try:
            session = manager().load(key)
        except SessionInvalid:
            return self._forget()
        return self._loaded_from(session)

    async def aload(self) -> dict[str, Any]:
        key = self.session_key
        if key is None:
            return {}
        if self._is_legacy(key):
            return await self._aload_legacy(key)
        try:
            session = await async_manager().load(key)
        except SessionInvalid:
            return self._forget()
        return self._loaded_from(session)

    def _load_legacy(self, key: str) -> dict[str, Any]:
        sessions = manager()
        session = sessions.pointed_session(legacy.pointer(key))
        if session is None:
            return self._forget()
        try:
            session = sessions.rotate(session)
        except SessionGone:
            return self._forget()
        sessions.drop_pointer(legacy.pointer(key))
        self.modified = True  # the new token must reach the client
        return self._loaded_from(session)

    async def _aload_legacy(self, key: str) -> dict[str, Any]:
        sessions = async_manager()
        session = await sessions.pointed_session(legacy.pointer(key))
        if session is None:
            return self._forget()
        try:
            session = await sessions.rotate(session)
        except SessionGone:
            return self._forget()
        await sessions.drop_pointer(legacy.pointer(key))
        self.modified = True  # the new token must reach the client
        return self._loaded_from(session)

    def exists(self, session_key: str | None) -> bool:
        if not session_key:
            return False
        sessions = manager()
        if self._is_legacy(session_key):
            return sessions.pointed_session(legacy.pointer(session_key)) is not None
        return sessions.get(session_key, touch=False) is not None

    async def aexists(self, session_key: str | None) -> bool:
        if not session_key:
            return False
        sessions = async_manager()
        if self._is_legacy(session_key):
            return await sessions.pointed_session(legacy.pointer(session_key)) is not None
        return await sessions.get(session_key, touch=False) is not None

    def create(self) -> None:
        data = getattr(self, "_session_cache", {})
        sessions = manager()
        session = sessions.create(
            user_id=_user_of(data), client=self.client, ip=self.ip,
            user_agent=self.user_agent, data=data,
        )  # fmt: skip
        expiry = self._new_expiry(data)
        if expiry is not UNCHANGED:
            sessions.set_expiry(session, expiry)
        self._created(session, data)

    async def acreate(self) -> None:
        data = getattr(self, "_session_cache", {})
        sessions = async_manager()
        session = await sessions.create(
            user_id=_user_of(data), client=self.client, ip=self.ip,
            user_agent=self.user_agent, data=data,
        )  # fmt: skip
        expiry = self._new_expiry(data)
        if expiry is not UNCHANGED:
            await sessions.set_expiry(session, expiry)
        self._created(session, data)

    def save(self, must_create: bool = False) -> None:
        if must_create and self._record is not None:
            raise CreateError("this session exists already")
        data = self._get_session(no_load=must_create)  # type: ignore[attr-defined]  # private in the stubs
        if must_create or self.session_key is None:
            return self.create()
        record = self._record or self._record_for_update()
        sessions = manager()
        try:
            wanted = _user_of(data)
            if wanted != record.user_id:  # login, logout or user change: a new token
                rotated = sessions.rotate(Session(record), user_id=wanted)
                self._rotated_to(rotated)
                record = rotated.record
            core, expiry = self._pending(record, data)
            sessions.save(core)
            if expiry is not UNCHANGED:
                sessions.set_expiry(core, expiry)
        except SessionGone as exc:
            raise UpdateError(_GONE) from exc
        self._saved(core.record, data)
        return None

    async def asave(self, must_create: bool = False) -> None:
        if must_create and self._record is not None:
            raise CreateError("this session exists already")
        data = await self._aget_session(no_load=must_create)  # type: ignore[attr-defined]  # private in the stubs
        if must_create or self.session_key is None:
            return await self.acreate()
        record = self._record or await self._arecord_for_update()
        sessions = async_manager()
        try:
            wanted = _user_of(data)
            if wanted != record.user_id:  # login, logout or user change: a new token
                rotated = await sessions.rotate(Session(record), user_id=wanted)
                self._rotated_to(rotated)
                record = rotated.record
            core, expiry = self._pending(record, data)
            await sessions.save(core)
            if expiry is not UNCHANGED:
                await sessions.set_expiry(core, expiry)
        except SessionGone as exc:
            raise UpdateError(_GONE) from exc
        self._saved(core.record, data)
        return None

    def _record_for_update(self) -> SessionRecord:
        """The data was replaced without reading (clear()); the session must still be alive."""
        self.load()
        if self._record is None:
            raise UpdateError(_GONE)
        return self._record

    async def _arecord_for_update(self) -> SessionRecord:
        await self.aload()
        if self._record is None:
            raise UpdateError(_GONE)
        return self._record

    def delete(self, session_key: str | None = None) -> None:
        key = self.session_key if session_key is None else session_key
        if key is None:
            return
        if key == self.session_key:
            self._record = None
        sessions = manager()
        if self._is_legacy(key):
            sessions.revoke_pointed(legacy.pointer(key))
            return
        try:
            sessions.revoke(key)
        except SessionInvalid:
            pass

    async def adelete(self, session_key: str | None = None) -> None:
        key = self.session_key if session_key is None else session_key
        if key is None:
            return
        if key == self.session_key:
            self._record = None
        sessions = async_manager()
        if self._is_legacy(key):
            await sessions.revoke_pointed(legacy.pointer(key))
            return
        try:
            await sessions.revoke(key)
        except SessionInvalid:
            pass

    def cycle_key(self) -> None:
        # `_get_session()` is what Django's `_session` property calls: written out, so that the
        # twin's `await self._aget_session()` (as in Django's own acycle_key) reads the same.
        data = self._get_session()  # type: ignore[attr-defined]  # private in the stubs
        record = self._record
        if record is None and self.session_key is not None:
            self.load()
            record = self._record
        if record is None:  # nothing stored yet: the save will create it under a new token
            self._session_key = None
        else:
            try:
                self._rotated_to(manager().rotate(Session(record)))
            except SessionGone:  # logged out meanwhile: start afresh, as Django's create() would
                self._forget()
        self._session_cache = data
        self.modified = True

    async def acycle_key(self) -> None:
        data = await self._aget_session()  # type: ignore[attr-defined]  # private in the stubs
        record = self._record
        if record is None and self.session_key is not None:
            await self.aload()
            record = self._record
        if record is None:  # nothing stored yet: the save will create it under a new token
            self._session_key = None
        else:
            try:
                self._rotated_to(await async_manager().rotate(Session(record)))
            except SessionGone:  # logged out meanwhile: start afresh, as Django's create() would
                self._forget()
        self._session_cache = data
        self.modified = True

    @classmethod
    def clear_expired(cls) -> None:
        manager().purge()

    @classmethod
    async def aclear_expired(cls) -> None:
        await async_manager().purge()
