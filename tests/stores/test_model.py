"""Every store against a plain-dict model: Hypothesis picks the sequence of operations.

Rules: create, read, write (through a Session object that may be stale), incr, rotate, revoke,
revoke all of a user's (keeping one), block and unblock a user, advance the clock, purge, list
and count. The model is the contract in a few dozen lines; any
difference in result, data or error is a failure. Redis forgets a dead session when its TTL runs
out in real time, so there a session whose TTL was under a minute may read as unknown.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule, run_state_machine_as_test

from huihua.core.clock import FakeClock
from huihua.core.data import INT64_MAX, INT64_MIN, data_size
from huihua.core.errors import (
    NotAnInteger,
    SessionDataError,
    SessionDataTooLarge,
    SessionExpired,
    SessionGone,
    SessionInvalid,
    SessionRevoked,
    SessionUnknown,
)
from huihua.core.manager import KEEP, SessionManager
from huihua.core.policy import HOUR, MINUTE
from huihua.core.session import Session
from huihua.stores.memory import MemoryStore
from huihua.stores.sqlite import SQLiteStore

LIMIT = 160  # small, so the size cap is part of the game
IDLE, ABSOLUTE = 30 * MINUTE, 12 * HOUR
KEYS = st.sampled_from(["a", "b", "n", "__proto__", "", "ключ"])
VALUES = st.one_of(
    st.integers(-10, 10), st.text(max_size=30), st.none(), st.booleans(),
    st.lists(st.integers(-3, 3), max_size=3), st.sampled_from([INT64_MAX, 1.5, 10**20]),
)  # fmt: skip
STEPS = st.one_of(st.integers(-3, 3), st.sampled_from([INT64_MAX, INT64_MIN]))


@dataclass
class Model:
    token: str
    user: str | None
    data: dict[str, Any]
    created: float
    last_seen: float
    absolute: float
    last_write: float
    sid: str = ""
    revoked: bool = False
    stored: bool = True

    @property
    def expires(self) -> float:
        return min(self.last_seen + IDLE, self.absolute)


@dataclass
class Backend:
    store: Any
    reset: Callable[[], None]
    redis: bool = False
    closers: list[Callable[[], None]] = field(default_factory=list)


class StoreMachine(RuleBasedStateMachine):
    backend: Backend

    def __init__(self) -> None:
        super().__init__()
        self.backend.reset()
        self.clock = FakeClock()
        self.m = SessionManager(self.backend.store, clock=self.clock, max_data_bytes=LIMIT, events=())
        self.model: list[Model] = []
        self.objects: dict[int, Session] = {}  # the last Session object seen for each
        self.blocked: set[str] = set()

    # -- the model's verdicts -------------------------------------------------------------------
    def now(self) -> float:
        return self.clock.now()

    def live(self, s: Model) -> bool:
        return s.stored and not s.revoked and self.now() < s.expires

    def fragile(self, s: Model) -> bool:
        return self.backend.redis and s.expires - s.last_write < MINUTE

    def verdict(self, s: Model) -> type[Exception] | None:
        if not s.stored:
            return SessionUnknown
        if s.revoked:
            return SessionRevoked
        return None if self.now() < s.expires else SessionExpired

    def pick(self, i: int) -> tuple[int, Model]:
        i %= len(self.model)
        return i, self.model[i]

    def load(self, i: int, s: Model) -> Session | None:
        """Load as a request would, checking the answer; the Session, or None if refused."""
        expected = self.verdict(s)
        try:
            session = self.m.load(s.token)
        except SessionInvalid as exc:
            self.objects.pop(i, None)
            allowed = (expected, SessionUnknown) if self.fragile(s) else (expected,)
            assert type(exc) in allowed, (exc, expected)  # noqa: PT017 - the model chooses
            return None
        assert expected is None, f"served a session the model says is {expected}"
        assert dict(session) == s.data
        if self.now() - s.last_seen >= MINUTE:  # activity is written once a minute
            s.last_seen = s.last_write = self.now()
        assert session.record.last_seen_at == s.last_seen
        self.objects[i] = session
        return session

    # -- rules ----------------------------------------------------------------------------------
    @rule(user=st.sampled_from([None, "u1", "u2"]), data=st.dictionaries(KEYS, VALUES, max_size=3))
    def create(self, user: str | None, data: dict[str, Any]) -> None:
        if data_size(data) > LIMIT:
            with pytest.raises(SessionDataTooLarge):
                self.m.create(user_id=user, data=data)
            return
        session = self.m.create(user_id=user, data=data)
        assert session.token is not None
        now = self.now()
        model = Model(session.token, user, dict(data), now, now, now + ABSOLUTE, now, sid=session.id)
        self.model.append(model)
        self.objects[len(self.model) - 1] = session
        if user in self.blocked:  # stored, but dead from the start
            model.revoked, model.data = True, {}

    @precondition(lambda self: self.model)
    @rule(i=st.integers(0, 99))
    def read(self, i: int) -> None:
        self.load(*self.pick(i))

    @precondition(lambda self: self.model)
    @rule(i=st.integers(0, 99), key=KEYS, value=VALUES, delete=st.booleans())
    def write(self, i: int, key: str, value: Any, delete: bool) -> None:
        i, s = self.pick(i)
        session = self.objects.get(i) or self.load(i, s)
        if session is None:
            return
        if delete:
            session.pop(key, None)
        else:
            session[key] = value
        changes = session.changes()
        if not changes:
            return
        after = {k: v for k, v in s.data.items() if k not in changes.unset}
        after.update(changes.set)
        self.save(i, s, session, after)

    @precondition(lambda self: self.model)
    @rule(i=st.integers(0, 99), key=KEYS, by=STEPS)
    def incr(self, i: int, key: str, by: int) -> None:
        i, s = self.pick(i)
        session = self.objects.get(i) or self.load(i, s)
        if session is None:
            return
        session.incr(key, by)
        current = s.data.get(key, 0)
        if self.live(s) and (isinstance(current, bool) or not isinstance(current, int)):
            self.objects.pop(i)
            with pytest.raises(NotAnInteger):
                self.m.save(session)
            return
        if self.live(s) and not INT64_MIN <= current + by <= INT64_MAX:
            self.objects.pop(i)
            with pytest.raises(SessionDataError):
                self.m.save(session)
            return
        self.save(i, s, session, {**s.data, key: current + by} if self.live(s) else s.data)

    def save(self, i: int, s: Model, session: Session, after: dict[str, Any]) -> None:
        if not self.live(s):
            self.objects.pop(i)
            with pytest.raises(SessionGone):
                self.m.save(session)
        elif data_size(after) > LIMIT:
            self.objects.pop(i)
            with pytest.raises(SessionDataTooLarge):
                self.m.save(session)
        else:
            self.m.save(session)
            s.data, s.last_write = after, self.now()
            assert dict(session) == after

    @precondition(lambda self: self.model)
    @rule(i=st.integers(0, 99), to=st.sampled_from([KEEP, None, "u1"]), keep=st.booleans())
    def rotate(self, i: int, to: Any, keep: bool) -> None:
        i, s = self.pick(i)
        session = self.objects.get(i) or self.load(i, s)
        if session is None:
            return
        if not self.live(s):
            with pytest.raises(SessionGone):
                self.m.rotate(session, user_id=to, keep_data=keep)
            return
        new = self.m.rotate(session, user_id=to, keep_data=keep)
        assert new.token is not None
        owner = s.user if to is KEEP else to
        now = self.now()
        s.revoked, s.data, s.last_write = True, {}, now
        if owner == s.user:
            successor = Model(new.token, owner, {}, s.created, s.last_seen, s.absolute, now)
        else:
            successor = Model(new.token, owner, {}, now, now, now + ABSOLUTE, now)
        successor.data = dict(session) if keep else {}
        successor.sid = new.id
        self.model.append(successor)
        assert dict(new) == successor.data
        self.objects[len(self.model) - 1] = new
        if owner in self.blocked:
            successor.revoked, successor.data = True, {}

    @precondition(lambda self: self.model)
    @rule(i=st.integers(0, 99))
    def revoke(self, i: int) -> None:
        i, s = self.pick(i)
        live = self.live(s)
        assert self.m.revoke(s.token) is live
        if live:
            s.revoked, s.data, s.last_write = True, {}, self.now()

    @rule(user=st.sampled_from(["u1", "u2"]), keep=st.one_of(st.none(), st.integers(0, 99)))
    def revoke_all(self, user: str, keep: int | None) -> None:
        kept = self.pick(keep)[1] if keep is not None and self.model else None
        ending = [s for s in self.model if s.user == user and self.live(s) and s is not kept]
        revoked = self.m.revoke_user(user, except_id=kept.sid if kept else None)
        if kept is not None and not self.live(kept):
            kept = None  # only a live session is kept: an expired one reads as revoked now
        sure = [s for s in ending if not self.fragile(s)]
        assert len(sure) <= revoked <= len(ending)
        for s in self.model:
            if s.user == user and s is not kept and not s.revoked and s.stored:
                s.revoked, s.data, s.last_write = True, {}, self.now()

    @rule(user=st.sampled_from(["u1", "u2"]), blocked=st.booleans())
    def block(self, user: str, blocked: bool) -> None:
        ending = [s for s in self.model if s.user == user and self.live(s)] if blocked else []
        revoked = self.m.set_user_blocked(user, blocked)
        assert len([s for s in ending if not self.fragile(s)]) <= revoked <= len(ending)
        for s in self.model:
            if s.user == user and not s.revoked and s.stored:  # unblocking revives none
                s.revoked, s.data, s.last_write = True, {}, self.now()
        (self.blocked.add if blocked else self.blocked.discard)(user)

    @rule(seconds=st.sampled_from([1, 59, 61, 600, 1700, 1801, 3600, 6 * HOUR]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def purge(self) -> None:
        dead = [s for s in self.model if s.stored and s.expires <= self.now()]
        removed = self.m.purge(batch_size=3)
        sure = [s for s in dead if not self.fragile(s)]
        assert len(sure) <= removed <= len(dead)
        for s in dead:
            s.stored = False

    @rule()
    def lists_and_counts(self) -> None:
        for user in ("u1", "u2"):
            expected = sorted(s.token for s in self.model if s.user == user and self.live(s))
            got = self.m.list_user(user)
            assert len(got) == len(expected)
            assert all(x.user_id == user for x in got)
        assert self.m.count() == sum(self.live(s) for s in self.model)


def _memory() -> Backend:
    holder: dict[str, MemoryStore] = {}

    class Fresh:  # a new MemoryStore per example, behind one object
        def __getattr__(self, name: str) -> Any:
            return getattr(holder["store"], name)

    return Backend(Fresh(), lambda: holder.__setitem__("store", MemoryStore()))


def _sqlite(path: str) -> Backend:
    store = SQLiteStore(path)

    def reset() -> None:
        db = sqlite3.connect(path)
        db.execute("DELETE FROM huihua_session")
        db.execute("DELETE FROM huihua_user_mark")
        db.commit()
        db.close()

    return Backend(store, reset, closers=[store.close])


def _redis(url: str) -> Backend:
    import redis

    from huihua.stores.redis import RedisStore

    store = RedisStore.from_url(url)
    plain = redis.Redis.from_url(url)
    return Backend(store, lambda: plain.flushdb() and None, redis=True, closers=[store.close, plain.close])


def _postgres(url: str) -> Backend:
    import psycopg

    from huihua.stores.postgres import PostgresStore

    store = PostgresStore.from_url(url)
    store.ping()
    plain = psycopg.connect(url, autocommit=True)
    return Backend(store, lambda: plain.execute("TRUNCATE huihua_session, huihua_kv, huihua_user_mark") and None,
                   closers=[store.close, plain.close])  # fmt: skip


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis", "postgres"])
def test_store_matches_the_model(kind: str, request: pytest.FixtureRequest) -> None:
    if kind == "memory":
        backend = _memory()
    elif kind == "sqlite":
        backend = _sqlite(os.path.join(tempfile.mkdtemp(), "model.db"))
    elif kind == "redis":
        backend = _redis(request.getfixturevalue("redis_url"))
    else:
        backend = _postgres(request.getfixturevalue("postgres_url"))
    machine = type(f"{kind.title()}Machine", (StoreMachine,), {"backend": backend})
    try:
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=25,
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
                database=None,
            ),
        )
    finally:
        for close in backend.closers:
            close()
