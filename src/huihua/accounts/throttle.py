"""Login throttling per account and per client IP, kept in the accounts database so every
worker process sees the same counts.

Per account: after 5 consecutive failures each further one doubles a short wait (1 s, 2 s, ...
capped at 15 minutes), and no more than 100 failures an hour are possible (ASVS 2.2.1, NIST
800-63B 5.2.2). Nothing is permanent: a victim whose password is being guessed can log in again
when the wait ends, and a success resets the account's count. Per IP: 100 failures in 15 minutes,
which stops one source from spraying passwords over many accounts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .database import Database


@dataclass(frozen=True, slots=True)
class Limit:
    max_failures: int
    window: float
    free_failures: int | None = None  # backoff starts after this many consecutive failures
    max_backoff: float = 900.0


ACCOUNT_LIMIT = Limit(max_failures=100, window=3600.0, free_failures=5)
IP_LIMIT = Limit(max_failures=100, window=900.0)


class Throttle:
    def __init__(self, db: Database) -> None:
        self.db = db

    def retry_after(self, key: str, now: float) -> int:
        """Seconds until `key` may try again; 0 if it may now."""
        rows = self.db.execute("SELECT blocked_until FROM huihua_throttle WHERE key = ?", (key,))
        blocked_until = float(rows[0][0]) if rows else 0.0
        return 0 if blocked_until <= now else max(1, math.ceil(blocked_until - now))

    def failed(self, key: str, limit: Limit, now: float) -> None:
        with self.db.transaction() as cur:
            rows = cur.execute("SELECT failures, window_start FROM huihua_throttle WHERE key = ?", (key,))
            failures, start = rows[0] if rows else (0, now)
            if now - start >= limit.window:
                failures, start = 0, now
            failures += 1
            blocked_until = 0.0
            if failures >= limit.max_failures:
                blocked_until = start + limit.window
            elif limit.free_failures is not None and failures > limit.free_failures:
                blocked_until = now + min(2.0 ** (failures - limit.free_failures - 1), limit.max_backoff)
            cur.execute(
                "INSERT INTO huihua_throttle (key, failures, window_start, blocked_until)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET failures = excluded.failures,"
                " window_start = excluded.window_start, blocked_until = excluded.blocked_until",
                (key, failures, start, blocked_until),
            )

    def succeeded(self, key: str) -> None:
        self.db.execute("DELETE FROM huihua_throttle WHERE key = ?", (key,))
