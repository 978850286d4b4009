"""Visitor limits, and a fresh lifetime at every login (issue 9 item 6; ASVS 7.2.4)."""

from __future__ import annotations

import pytest

from huihua.core.clock import FakeClock
from huihua.core.errors import SessionDataTooLarge, SessionExpired
from huihua.core.manager import SessionManager
from huihua.core.policy import DAY, HOUR, MINUTE, ExpiryPolicy, Lifetime
from huihua.stores.memory import MemoryStore

VISITOR = Lifetime(idle=30 * MINUTE, absolute=DAY)


def manager(clock: FakeClock, **options: object) -> SessionManager:
    policy = ExpiryPolicy(anonymous=VISITOR)
    return SessionManager(MemoryStore(), policy=policy, clock=clock, events=(), **options)  # type: ignore[arg-type]


def test_a_visitor_lives_no_longer_than_the_visitor_lifetime(clock: FakeClock) -> None:
    m = manager(clock)
    visitor = m.create(client="miniprogram")  # a user's mini-program session: 2 days idle
    user = m.create(client="miniprogram", user_id="u")
    assert visitor.record.timing.idle_timeout == 30 * MINUTE
    assert visitor.record.timing.absolute_expires_at == clock.now() + DAY
    assert user.record.timing.idle_timeout == 2 * DAY
    browser = m.create(client="browser")  # shorter already: the client kind's 12 hours stay
    assert browser.record.timing.absolute_expires_at == clock.now() + 12 * HOUR
    clock.advance(31 * MINUTE)
    with pytest.raises(SessionExpired):
        m.load(visitor.token)
    assert m.load(user.token).user_id == "u"


def test_a_visitor_that_logs_in_gets_the_users_lifetimes(clock: FakeClock) -> None:
    m = manager(clock)
    visitor = m.create(client="miniprogram", data={"cart": ["tea"]})
    clock.advance(10 * MINUTE)
    user = m.login(m.load(visitor.token), "u")
    assert user.record.timing.idle_timeout == 2 * DAY
    assert user.record.timing.absolute_expires_at == clock.now() + 30 * DAY
    clock.advance(DAY + HOUR)  # past the visitor's absolute limit, within the user's idle one
    assert dict(m.load(user.token)) == {"cart": ["tea"]}
    assert m.policy.with_expiry(m.load(user.token).record, None, clock.now()).idle_timeout == 2 * DAY


def test_visitor_data_has_its_own_cap(clock: FakeClock) -> None:
    m = manager(clock, anonymous_max_data_bytes=100)
    with pytest.raises(SessionDataTooLarge) as info:
        m.create(data={"big": "x" * 100})
    assert info.value.limit == 100
    visitor = m.create(data={"small": "x"})
    with pytest.raises(SessionDataTooLarge):
        m.update(m.load(visitor.token), set={"big": "x" * 100})
    user = m.login(m.load(visitor.token), "u")  # a user has the normal cap
    m.update(m.load(user.token), set={"big": "x" * 1000})
    with pytest.raises(SessionDataTooLarge):  # and back to a visitor: the cap again, at rotation
        m.rotate(m.load(user.token), user_id=None)
    assert m.data_limit(None) == 100 and m.data_limit("u") == m.max_data_bytes


def test_logging_in_again_starts_a_new_lifetime(clock: FakeClock) -> None:
    m = manager(clock)
    first = m.login(None, "u", client="browser")
    for _ in range(15):  # five active hours
        clock.advance(20 * MINUTE)
        m.load(first.token)
    again = m.login(m.load(first.token), "u", client="browser")
    assert again.id != first.id
    assert again.record.created_at == clock.now()
    assert again.record.timing.absolute_expires_at == clock.now() + 12 * HOUR
    for _ in range(22):  # active, past the first login's absolute deadline (12 h after it)
        clock.advance(20 * MINUTE)
        m.load(again.token)
    assert clock.now() > first.record.timing.absolute_expires_at
    kept = m.rotate(m.load(again.token))  # a privilege change is not a new login: deadlines stay
    assert kept.record.created_at == again.record.created_at
    assert kept.record.timing.absolute_expires_at == again.record.timing.absolute_expires_at
