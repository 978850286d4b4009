"""Login throttling per account and per client IP, kept in the accounts database so every
worker process sees the same counts.

Per account: after 5 consecutive failures each further one doubles a short wait (1 s, 2 s, ...
capped at 15 minutes), and no more than 100 failures an hour are possible (ASVS 2.2.1, NIST
800-63B 5.2.2). Nothing is permanent: a victim whose password is being guessed can log in again
when the wait ends, and a success resets the account's count. Per IP: 100 failures in 15 minutes,
which stops one source from spraying passwords over many accounts.

An attempt is *reserved* before the password is verified: one transaction checks every limit and
counts the attempt as a failure in the same write (SQLite's BEGIN IMMEDIATE, PostgreSQL's row
locks), so requests in flight at the same time, in any process, cannot all pass a check that
none of them has counted yet. A success then releases its reservation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ..core.addresses import limit_bucket
from ..core.clock import Clock, SystemClock
from ..core.errors import TooManyAttempts
from .database import Cursor, Database

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Limit:
    max_failures: int
    window: float
    free_failures: int | None = None  # backoff starts after this many consecutive failures
    max_backoff: float = 900.0

    def blocked_until(self, failures: int, start: float, now: float) -> float:
        """When the next attempt may be made after `failures` in the window begun at `start`."""
        if failures >= self.max_failures:
            return start + self.window
        if self.free_failures is not None and failures > self.free_failures:
            return now + min(2.0 ** (failures - self.free_failures - 1), self.max_backoff)
        return 0.0


ACCOUNT_LIMIT = Limit(max_failures=100, window=3600.0, free_failures=5)
IP_LIMIT = Limit(max_failures=100, window=900.0)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One counter an attempt is charged to; `reset` says what a success does: start the count
    again (an account) or only give this attempt back (an address)."""

    key: str
    limit: Limit
    reset: bool = False


def password_attempts(account: str | None, ip: str | None) -> list[Attempt]:
    """The counters one password check is charged to: the client's address (an IPv6 /64 counts
    as one) and the account."""
    attempts = [Attempt(f"ip:{limit_bucket(ip)}", IP_LIMIT)] if ip else []
    if account:
        attempts.append(Attempt(f"acct:{account}", ACCOUNT_LIMIT, reset=True))
    return attempts


SCHEMA = """CREATE TABLE IF NOT EXISTS huihua_throttle (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    window_start DOUBLE PRECISION NOT NULL,
    blocked_until DOUBLE PRECISION NOT NULL
)"""


class Throttle:
    """Over any accounts database (`database_from_url`); creates its table if missing."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.execute(SCHEMA)

    def reserve(self, attempts: Sequence[Attempt], now: float) -> None:
        """Count one attempt on every counter, or on none and raise TooManyAttempts."""
        ordered = sorted({a.key: a for a in attempts}.values(), key=lambda a: a.key)  # no deadlocks
        wait = 0.0
        with self.db.transaction() as cur:
            counts = [(a, *self._locked(cur, a.key, now)) for a in ordered]
            for _, _, _, blocked_until in counts:
                wait = max(wait, blocked_until - now)
            if wait <= 0:
                for a, failures, start, _ in counts:
                    fresh = now - start >= a.limit.window  # the window ended: count from here
                    total, begun = (1, now) if fresh else (failures + 1, start)
                    self._write(cur, a.key, total, begun, a.limit.blocked_until(total, begun, now))
        if wait > 0:  # raised outside the transaction: the no-op upserts commit, nothing else did
            raise TooManyAttempts(max(1, math.ceil(wait)))

    def release(self, attempts: Sequence[Attempt], now: float) -> None:
        """The reserved attempt succeeded: reset the counters that reset, uncount the others."""
        with self.db.transaction() as cur:
            for a in sorted({a.key: a for a in attempts}.values(), key=lambda a: a.key):
                if a.reset:
                    cur.execute("DELETE FROM huihua_throttle WHERE key = ?", (a.key,))
                    continue
                failures, start, _ = self._locked(cur, a.key, now)
                failures = max(0, failures - 1)
                self._write(cur, a.key, failures, start, a.limit.blocked_until(failures, start, now))

    def guarded(self, attempts: Sequence[Attempt], check: Callable[[], T | None], now: float) -> T | None:
        """Run `check` (a password verification: a value on success, None on failure) under a
        reservation. A failure, or an exception, keeps the attempt counted."""
        self.reserve(attempts, now)
        result = check()
        if result is not None:
            self.release(attempts, now)
        return result

    @staticmethod
    def _locked(cur: Cursor, key: str, now: float) -> tuple[int, float, float]:
        # an upsert that changes nothing: creates the row if missing and holds its lock
        rows = cur.execute(
            "INSERT INTO huihua_throttle (key, failures, window_start, blocked_until) VALUES (?, 0, ?, 0)"
            " ON CONFLICT (key) DO UPDATE SET failures = huihua_throttle.failures"
            " RETURNING failures, window_start, blocked_until",
            (key, now),
        )
        failures, start, blocked_until = rows[0]
        return int(failures), float(start), float(blocked_until)

    @staticmethod
    def _write(cur: Cursor, key: str, failures: int, start: float, blocked_until: float) -> None:
        cur.execute(
            "UPDATE huihua_throttle SET failures = ?, window_start = ?, blocked_until = ? WHERE key = ?",
            (failures, start, blocked_until, key),
        )


def check_password_throttled(
    throttle: Throttle,
    check: Callable[[], T | None],
    *,
    account: str | None,
    ip: str | None,
    clock: Clock | None = None,
) -> T | None:
    """For synchronous callers (Django's bind view): run `check`, a password verification that
    returns the user or None, charged to `account` and `ip` exactly like the service's own
    checks. Raises TooManyAttempts before calling `check` when a limit is reached."""
    now = (clock or SystemClock()).now()
    return throttle.guarded(password_attempts(account, ip), check, now)
