"""The password throttle itself (accounts/throttle.py), on real SQLite and PostgreSQL: the
reservation is atomic across threads, a success gives its attempt back, and the synchronous
entry point other frameworks (Django's bind view) call behaves like the service's own check."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from huihua.accounts.database import PostgresDatabase, SQLiteDatabase
from huihua.accounts.throttle import (
    Throttle,
    TooManyAttempts,
    check_password_throttled,
    password_attempts,
)
from huihua.core.clock import FakeClock


@pytest.fixture(params=["sqlite", "postgres"])
def throttle(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Throttle]:
    db: Any = (
        SQLiteDatabase(f"{tmp_path}/accounts.db")
        if request.param == "sqlite"
        else PostgresDatabase(request.getfixturevalue("postgres_url"))
    )
    yield Throttle(db)  # creates its table
    db.close()


def failures(throttle: Throttle, key: str) -> int:
    rows = throttle.db.execute("SELECT failures FROM huihua_throttle WHERE key = ?", (key,))
    return int(rows[0][0]) if rows else 0


def test_parallel_reservations_pass_exactly_as_many_as_sequential_ones(throttle: Throttle) -> None:
    now, barrier, results = 1000.0, threading.Barrier(20), []

    def guess() -> None:
        barrier.wait()
        try:
            throttle.reserve(password_attempts("victim", "198.51.100.7"), now)
            results.append("verified")
        except TooManyAttempts:
            results.append("refused")

    threads = [threading.Thread(target=guess) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("verified") == 6 and results.count("refused") == 14
    # refused attempts are not counted anywhere: only the six reserved ones are
    assert failures(throttle, "acct:victim") == 6 and failures(throttle, "ip:198.51.100.7") == 6


def test_a_blocked_counter_charges_none_of_the_others(throttle: Throttle) -> None:
    for i in range(6):
        throttle.reserve(password_attempts("ann", f"192.0.2.{i}"), 1000.0)
    with pytest.raises(TooManyAttempts) as refused:
        throttle.reserve(password_attempts("ann", "192.0.2.99"), 1000.0)
    assert refused.value.retry_after == 1
    assert failures(throttle, "ip:192.0.2.99") == 0


def test_success_resets_the_account_and_gives_the_address_its_attempt_back(throttle: Throttle) -> None:
    for _ in range(3):
        throttle.reserve(password_attempts("bea", "192.0.2.1"), 1000.0)
    attempts = password_attempts("bea", "192.0.2.1")
    assert throttle.guarded(attempts, lambda: "user", 1000.0) == "user"
    assert failures(throttle, "acct:bea") == 0 and failures(throttle, "ip:192.0.2.1") == 3
    assert throttle.guarded(attempts, lambda: None, 1000.0) is None  # a failure stays counted
    assert failures(throttle, "acct:bea") == 1 and failures(throttle, "ip:192.0.2.1") == 4


def test_the_address_limit_and_its_window(throttle: Throttle) -> None:
    for i in range(100):
        throttle.reserve(password_attempts(f"user{i}", "203.0.113.5"), 1000.0)
    with pytest.raises(TooManyAttempts) as refused:
        throttle.reserve(password_attempts("someone", "203.0.113.5"), 1500.0)
    assert refused.value.retry_after == 400  # the 15-minute window began at 1000
    throttle.reserve(password_attempts("someone", "203.0.113.5"), 1900.0)  # a new window
    assert failures(throttle, "ip:203.0.113.5") == 1


def test_the_synchronous_entry_point(throttle: Throttle) -> None:
    clock, calls = FakeClock(), []

    def wrong() -> None:
        calls.append("checked")
        return None

    for _ in range(6):
        assert check_password_throttled(throttle, wrong, account="carl", ip="192.0.2.8", clock=clock) is None
    with pytest.raises(TooManyAttempts):
        check_password_throttled(throttle, lambda: "carl's user", account="carl", ip="192.0.2.8", clock=clock)
    assert len(calls) == 6  # refused before the check: no verification was spent
    clock.advance(1)
    assert (
        check_password_throttled(throttle, lambda: "carl", account="carl", ip="192.0.2.8", clock=clock)
        == "carl"
    )
    assert failures(throttle, "acct:carl") == 0
