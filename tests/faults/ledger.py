"""The ledger: what the server acknowledged, and the check of the store against it afterwards.

Every request the load sends ends as one of three outcomes:

- acknowledged (2xx): the change happened and must survive;
- refused definitively (401, 4xx): nothing happened;
- unknown (a timeout, a dropped connection, a 503 or 507): the change may or may not have
  happened. An unknown increment lets its counter be +0 or +1, never +2; an unknown set lets the
  key hold the old or the new value; an unknown logout lets the session be live or dead.

Each session belongs to one client, which uses it sequentially, so its expected state is exact
up to the unknowns. Every acknowledged data answer carries the whole data, so it is checked on
the spot (a counter below the acknowledged count is a lost write, above count + unknowns a double
application) and then becomes the new exact state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

COUNTER = "n"
KEYS = ("k0", "k1")
ABSENT = "<absent>"


class State(str, Enum):
    LIVE = "live"
    REVOKED = "revoked"  # an acknowledged logout or logout-all
    MAYBE_REVOKED = "maybe_revoked"  # a logout whose answer was lost


@dataclass
class Tracked:
    """One session the server acknowledged, as its client knows it."""

    token: str
    user: str
    login_at: float
    state: State = State.LIVE
    base: int = 0  # the counter as of the last acknowledged answer
    unknown: int = 0  # increments sent since, whose answer was lost
    keys: dict[str, set[Any]] = field(default_factory=lambda: {k: {ABSENT} for k in KEYS})
    acked_writes: int = 1  # its login
    incr_ack_times: list[float] = field(default_factory=list)
    last_ack_at: float = 0.0
    revoked_at: float | None = None
    dead: bool = False  # a definitive 401 was seen: it must never work again


@dataclass
class Violation:
    kind: str  # lost | double_applied | resurrected | status_500 | false_401 | bad_fault_answer | unexpected
    detail: str
    at: float = field(default_factory=time.monotonic)


class Ledger:
    def __init__(self) -> None:
        self.sessions: dict[str, Tracked] = {}
        self.violations: list[Violation] = []
        self.allowed_losses: list[Violation] = []  # lost inside a documented window (AOF everysec)
        self.requests = 0
        self.statuses: dict[str, dict[int | str, int]] = {}
        # acknowledged writes as (sent, answered), monotonic; the load sets `sent_at` before it
        # reports an answer, so recovery counts only requests sent after the fault ended
        self.acks: list[tuple[float, float]] = []
        # acknowledged data changes alone, as (sent, answered, "incr" | "set" | "unset"): what
        # recovery is measured and checked on (a login or a logout is not a write of data)
        self.write_acks: list[tuple[float, float, str]] = []
        self.sent_at = 0.0
        self.loss_windows: list[tuple[float, float]] = []  # (start, end) monotonic: losses allowed
        # the same, for these users' sessions only (the users of one failed cluster shard)
        self.user_loss_windows: list[tuple[float, float, frozenset[str]]] = []

    # -- bookkeeping ---------------------------------------------------------------------------
    def count(self, phase: str, status: int | str) -> None:
        self.requests += 1
        bucket = self.statuses.setdefault(phase, {})
        bucket[status] = bucket.get(status, 0) + 1
        if status == 500:
            self.violate("status_500", f"a 500 in phase {phase}")

    def violate(
        self, kind: str, detail: str, *, ack_times: list[float] | None = None, user: str | None = None
    ) -> None:
        v = Violation(kind, detail)
        if kind in ("lost", "resurrected") and ack_times is not None and self._in_window(ack_times, user):
            self.allowed_losses.append(v)
        else:
            self.violations.append(v)

    def _in_window(self, times: list[float], user: str | None) -> bool:
        """Every one of `times` inside a window where a loss (of `user`'s) is documented and allowed."""
        windows = self.loss_windows + [(a, b) for a, b, users in self.user_loss_windows if user in users]
        return bool(times) and all(any(a <= t <= b for a, b in windows) for t in times)

    def acked(self, s: Tracked | None, at: float, kind: str | None = None) -> None:
        """An acknowledged write; `kind` ("incr", "set", "unset") for a change of session data."""
        self.acks.append((self.sent_at, at))
        if kind is not None:
            self.write_acks.append((self.sent_at, at, kind))
        if s is not None:
            s.acked_writes += 1
            s.last_ack_at = at

    def first_ack_after(self, t: float) -> float | None:
        later = [answered for sent, answered in self.acks if sent >= t]
        return min(later) - t if later else None

    def acks_sent_after(self, t: float) -> int:
        return sum(1 for sent, _ in self.acks if sent >= t)

    def first_write_ack_after(self, t: float, before: float = float("inf")) -> float | None:
        """Seconds from `t` to the first acknowledged data change sent at or after `t` and
        answered before `before` (the next fault); None if there was none."""
        later = [answered for sent, answered, _ in self.write_acks if sent >= t and answered < before]
        return min(later) - t if later else None

    def write_acks_sent_after(self, t: float) -> dict[str, int]:
        """The acknowledged data changes sent at or after `t`, by kind."""
        out: dict[str, int] = {}
        for sent, _, kind in self.write_acks:
            if sent >= t:
                out[kind] = out.get(kind, 0) + 1
        return out

    def live(self, user: str) -> list[Tracked]:
        return [s for s in self.sessions.values() if s.user == user and s.state is State.LIVE and not s.dead]

    # -- outcomes ------------------------------------------------------------------------------
    def logged_in(self, token: str, user: str, at: float) -> Tracked:
        s = Tracked(token=token, user=user, login_at=at, last_ack_at=at)
        self.sessions[token] = s
        self.acks.append((self.sent_at, at))
        return s

    def check_data(
        self, s: Tracked, data: dict[str, Any], *, pending: dict[str, Any] | None, at: float
    ) -> None:
        """An acknowledged answer's data against the ledger; it then becomes the exact state.
        `pending` is the change this answer acknowledges ({"incr": 1} or {"set": (k, v)} or
        {"unset": k}); None for a read, which checks without collapsing the unknowns."""
        n = data.get(COUNTER, 0)
        low = s.base + (1 if pending and "incr" in pending else 0)
        high = low + s.unknown
        if not isinstance(n, int):
            self.violate("unexpected", f"counter of {s.user} is {n!r}")
        elif n < low:
            self.violate("lost", f"{s.user}: counter {n} < {low} acknowledged",
                         ack_times=s.incr_ack_times[n - low :], user=s.user)  # fmt: skip
        elif n > high:
            self.violate(
                "double_applied", f"{s.user}: counter {n} > {low} acknowledged + {s.unknown} unknown"
            )
        expected = {k: set(v) for k, v in s.keys.items()}
        if pending and "set" in pending:
            expected[pending["set"][0]] = {pending["set"][1]}
        if pending and "unset" in pending:
            expected[pending["unset"]] = {ABSENT}
        for k, allowed in expected.items():
            value = data.get(k, ABSENT)
            if value not in allowed:
                self.violate("lost", f"{s.user}: {k}={value!r}, expected one of {sorted(map(str, allowed))}",
                             ack_times=[s.last_ack_at], user=s.user)  # fmt: skip
        if pending is None:
            return
        if "incr" in pending:
            s.incr_ack_times.append(at)
        s.base = n if isinstance(n, int) else s.base
        s.unknown = 0
        s.keys = {k: {data.get(k, ABSENT)} for k in KEYS}
        self.acked(s, at, kind=next(iter(pending)))

    def unknown(self, s: Tracked, change: dict[str, Any]) -> None:
        """A change whose answer was lost: widen what the session may hold."""
        if "incr" in change:
            s.unknown += 1
        if "set" in change:
            s.keys[change["set"][0]].add(change["set"][1])
        if "unset" in change:
            s.keys[change["unset"]].add(ABSENT)

    def unauthorized(self, s: Tracked, code: str, phase: str) -> None:
        """A definitive 401 for a session: a violation when the ledger says it is live."""
        if s.state is State.LIVE and not s.dead:
            self.violate("false_401", f"{s.user}: {code} for a live session in phase {phase}",
                         ack_times=[s.login_at], user=s.user)  # fmt: skip
        s.dead = True

    def revoked(self, sessions: list[Tracked], at: float, *, sure: bool) -> None:
        for s in sessions:
            if sure:
                s.state, s.revoked_at = State.REVOKED, at
            elif s.state is State.LIVE:
                s.state = State.MAYBE_REVOKED
        if sure:
            self.acks.append((self.sent_at, at))

    # -- the final check -----------------------------------------------------------------------
    def verify_final(self, s: Tracked, status: int, body: Any) -> None:
        """The answer of `GET /v1/session/data` for `s` after recovery."""
        usable = status == 200
        if s.state is State.REVOKED or s.dead:
            if usable:
                when = [s.revoked_at] if s.revoked_at is not None else []
                self.violate(
                    "resurrected",
                    f"{s.user}: a revoked or dead session answers 200",
                    ack_times=when,
                    user=s.user,
                )
            elif status != 401:
                self.violate("unexpected", f"{s.user}: final check of a revoked session got {status}")
            return
        if not usable:
            if status == 401 and s.state is State.MAYBE_REVOKED:
                return
            self.violate("lost", f"{s.user}: a live session answers {status} after recovery",
                         ack_times=[s.login_at], user=s.user)  # fmt: skip
            return
        self.check_data(s, body.get("data", {}), pending=None, at=time.monotonic())

    def acked_writes_checked(self) -> int:
        return sum(s.acked_writes for s in self.sessions.values())

    def kinds(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for v in self.violations:
            out[v.kind] = out.get(v.kind, 0) + 1
        return out

    def summary(self) -> str:
        head = [f"{v.kind}: {v.detail}" for v in self.violations[:15]]
        return f"{len(self.violations)} violations {self.kinds()}; statuses {self.statuses}\n" + "\n".join(
            head
        )
