"""What a store keeps for one session."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from .data import JSON


# Records are values: change them with dataclasses.replace, never in place. They are not
# frozen=True because a frozen dataclass builds itself through object.__setattr__, which is
# 4 µs of a 30 µs session load from SQLite (bench/stores.py).
@dataclass(slots=True)
class Timing:
    """The deadlines of a session; `expires_at` is the earlier of idle and absolute."""

    last_seen_at: float
    idle_timeout: float | None  # seconds of inactivity allowed; None: no idle limit
    absolute_expires_at: float
    persistent: bool = True  # False: the browser should forget it at close (set_expiry(0))

    @property
    def idle_expires_at(self) -> float | None:
        return None if self.idle_timeout is None else self.last_seen_at + self.idle_timeout

    @property
    def expires_at(self) -> float:
        idle = self.idle_expires_at
        return self.absolute_expires_at if idle is None else min(idle, self.absolute_expires_at)


@dataclass(slots=True)
class SessionRecord:
    key: str  # session_key(token): the routing tag and the token's SHA-256, never the token
    id: str  # the public session id
    user_id: str | None
    client: str  # "browser", "miniprogram", ... : chooses the default lifetimes
    created_at: float
    timing: Timing
    ip: str | None = None
    user_agent: str | None = None
    data: Mapping[str, JSON] = field(default_factory=dict)
    revoked_at: float | None = None  # a tombstone: kept until expiry so 401s can say why
    version: int = 1

    @property
    def expires_at(self) -> float:
        return self.timing.expires_at

    @property
    def last_seen_at(self) -> float:
        return self.timing.last_seen_at

    def is_live(self, now: float) -> bool:
        return self.revoked_at is None and now < self.expires_at

    def with_timing(self, timing: Timing) -> SessionRecord:
        return replace(self, timing=timing)


def ttl_seconds(expires_at: float, now: float) -> int:
    """Whole seconds a store should keep a row or key: at least one, rounded up."""
    return max(1, math.ceil(expires_at - now))
