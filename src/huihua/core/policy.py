"""Expiry policy: idle and absolute lifetimes per client kind, and when activity is recorded.

Defaults, and why:
- browser: 30 minutes idle, 12 hours absolute. A person types a password to come back, so this is
  the ASVS L2 / OWASP figure for a low-risk application (ASVS 4.0.3 3.3.2: 12 h or 30 min idle).
- miniprogram: 2 days idle, 30 days absolute. The SDK logs in again silently with `wx.login`,
  but every re-login spends a rate-limited `wx.login` and a `code2Session` call, and WeChat
  vouches for the user on each. The absolute cap still forces a fresh WeChat check monthly.
- service: 15 minutes idle, 1 hour absolute: machine clients log in again at no cost to anyone.
- anonymous (visitor) sessions, when `anonymous` is set: never longer than it, whatever the
  client kind (the service sets 30 minutes idle, 1 day absolute): anyone can make one, so they
  must not pile up (issue 9 item 6). At login the new user session gets the client kind's.
The kind comes from the request: `X-Client-Kind: miniprogram|service|browser` from a header client
(a mini program when it does not say); a client on cookies is always a browser (`client_kind`).
Activity moves `last_seen_at` at most once a minute, so reading a session stays a read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .record import SessionRecord, Timing

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Lifetime:
    idle: float | None  # seconds; None: no idle limit
    absolute: float


DEFAULT_LIFETIMES: Mapping[str, Lifetime] = {
    "browser": Lifetime(idle=30 * MINUTE, absolute=12 * HOUR),
    "miniprogram": Lifetime(idle=2 * DAY, absolute=30 * DAY),
    "service": Lifetime(idle=15 * MINUTE, absolute=HOUR),
}

ExpiryValue = int | float | timedelta | datetime | None


@dataclass(frozen=True, slots=True)
class ExpiryPolicy:
    lifetimes: Mapping[str, Lifetime] = field(default_factory=lambda: dict(DEFAULT_LIFETIMES))
    default_client: str = "browser"
    touch_interval: float = MINUTE
    anonymous: Lifetime | None = None  # the longest a session without a user may live; None: no cap

    def lifetime(self, client: str, *, anonymous: bool = False) -> Lifetime:
        life = self.lifetimes.get(client) or self.lifetimes[self.default_client]
        cap = self.anonymous if anonymous else None
        if cap is None:
            return life
        idles = [i for i in (life.idle, cap.idle) if i is not None]
        return Lifetime(idle=min(idles) if idles else None, absolute=min(life.absolute, cap.absolute))

    def initial_timing(self, client: str, now: float, *, anonymous: bool = False) -> Timing:
        life = self.lifetime(client, anonymous=anonymous)
        return Timing(last_seen_at=now, idle_timeout=life.idle, absolute_expires_at=now + life.absolute)

    def touch_due(self, record: SessionRecord, now: float) -> bool:
        """Activity is written at most once per interval, and only where it moves a deadline."""
        return record.timing.idle_timeout is not None and (
            now - record.timing.last_seen_at >= self.touch_interval
        )

    def touched(self, timing: Timing, now: float) -> Timing:
        return Timing(now, timing.idle_timeout, timing.absolute_expires_at, timing.persistent)

    def with_expiry(self, record: SessionRecord, value: ExpiryValue, now: float) -> Timing:
        """Django's `set_expiry`: seconds of inactivity, a fixed moment, 0 = at browser close,
        None = back to the client kind's defaults. The absolute lifetime counts from creation."""
        life = self.lifetime(record.client, anonymous=record.user_id is None)
        default_absolute = record.created_at + life.absolute
        if value is None:
            return Timing(now, life.idle, default_absolute, persistent=True)
        if isinstance(value, datetime):
            moment = value if value.tzinfo else value.replace(tzinfo=UTC)
            return Timing(now, None, moment.timestamp(), persistent=True)
        seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
        if seconds == 0:
            return Timing(now, life.idle, default_absolute, persistent=False)
        return Timing(now, seconds, max(default_absolute, now + seconds), persistent=True)


CLIENT_KINDS = ("miniprogram", "service", "browser")


def client_kind(declared: str | None, *, header_transport: bool) -> tuple[str, str | None]:
    """The client kind of new sessions (it picks their lifetimes, core/policy.py) and, when the
    request's `X-Client-Kind` cannot be honoured, the 400 message. Header clients may declare
    any kind and are mini programs when they do not say; cookie clients are browsers."""
    default = "miniprogram" if header_transport else "browser"
    if declared is None or not declared.strip():
        return default, None
    kind = declared.strip().lower()
    if kind not in CLIENT_KINDS:
        return default, (
            f"X-Client-Kind must be one of {', '.join(CLIENT_KINDS)} (got {declared[:40]!r}); "
            "leave it out and a header client is a miniprogram, a cookie client a browser"
        )
    if not header_transport and kind != "browser":
        return default, (
            f"X-Client-Kind: {kind} needs the header transport (X-Session-Transport: header, then "
            "Authorization: Bearer); a client on cookies is a browser"
        )
    return kind, None
