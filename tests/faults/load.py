"""The load of the fault scenarios: clients that drive a real server and keep the ledger.

Each client owns one user (so a counter's expected value is known) and works sequentially on
its own sessions with a bounded mix: increments, set/unset, reads, logouts, logout-all and
logins, plus probes of its revoked sessions (which must stay dead). Every answer goes through
the ledger (ledger.py); every non-2xx answer must be a 401 for a session that is not live, or a
503/507 with an error code.

Recovery is checked too (`check_recovery`, from Scenario.check): after each fault ends, a data
change (an increment, a set or an unset) sent after its end is acknowledged within
`recovery_within` seconds, before the next fault; after the last one, increments and sets both.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import httpx
from ledger import KEYS, Ledger, State, Tracked

PASSWORD = "correct horse battery"
FAULT_CODES = frozenset({"store_unavailable", "store_full"})
HEADER = {"X-Session-Transport": "header"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Load:
    def __init__(
        self,
        base_url: str,
        ledger: Ledger | None = None,
        *,
        clients: int = 6,
        max_requests: int = 4000,
        timeout: float = 6.0,
        pause: float = 0.004,
        seed: int = 0,
        prefix: str = "ledger",
        data_bytes: int = 0,
        recovery_within: float = 30.0,
    ) -> None:
        self.base_url = base_url
        self.ledger = ledger or Ledger()
        self.clients = clients
        self.max_requests = max_requests
        self.timeout = timeout
        self.pause = pause
        self.seed = seed
        self.users = [f"{prefix}{i}" for i in range(clients)]
        self.data_bytes = data_bytes  # > 0: each set writes a value this long (fills a disk)
        self.phase = "before"
        self.fault_at: float | None = None
        self.recovered_at: float | None = None
        self.faults: list[tuple[float, float | None]] = []  # (start, end) of each fault, monotonic
        self.recovery_within = recovery_within  # seconds after a fault's end to acknowledge writes again
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.transport_errors = 0

    # -- control -------------------------------------------------------------------------------
    async def register(self) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30) as http:
            for name in self.users:
                r = await http.post(
                    "/v1/accounts", json={"username": name, "password": PASSWORD}, headers=HEADER
                )
                assert r.status_code == 201, r.text

    def start(self) -> None:
        self._started = time.monotonic()
        self._tasks = [asyncio.create_task(self._client(i)) for i in range(self.clients)]

    def fault(self) -> None:
        self.phase = "fault"
        self.fault_at = time.monotonic()
        self.faults.append((self.fault_at, None))

    def recovered(self) -> None:
        """The fault is over (store back, space freed, lock released, server restarted)."""
        self.phase = "after"
        self.recovered_at = time.monotonic()
        start = self.faults.pop()[0] if self.faults and self.faults[-1][1] is None else self.recovered_at
        self.faults.append((start, self.recovered_at))

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.wait_for(asyncio.gather(*self._tasks), self.timeout + 10)

    async def wait_requests(self, n: int, within: float = 30) -> None:
        """Until the ledger has seen `n` more requests (or the clients stopped)."""
        target = self.ledger.requests + n
        deadline = time.monotonic() + within
        while self.ledger.requests < target and time.monotonic() < deadline and not self._stop.is_set():  # noqa: ASYNC110 - polls a counter
            await asyncio.sleep(0.02)

    async def wait_acks_after_recovery(self, n: int = 20, within: float | None = None) -> None:
        """Until `n` data changes sent after the end of the fault are acknowledged, increments and
        sets among them; fails the test if that takes longer than `within` (`recovery_within`)."""
        assert self.recovered_at is not None, "load.recovered() marks the end of the fault first"
        within = self.recovery_within if within is None else within
        deadline = time.monotonic() + within
        while True:
            after = self.ledger.write_acks_sent_after(self.recovered_at)
            if sum(after.values()) >= n and after.get("incr") and after.get("set"):
                return
            if time.monotonic() >= deadline or self._stop.is_set():
                break
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"no recovery: {within:g} s after the fault ended, {sum(after.values())} of {n} writes "
            f"sent since were acknowledged ({after}; increments and sets both needed); answers since "
            f"the end: {self.ledger.statuses.get('after', {})}; {self.ledger.requests} requests in all"
        )

    def recovery_times(self) -> list[float | None]:
        """For each fault: seconds from its end to the first data change sent after it and
        acknowledged before the next fault began (None: none was)."""
        times: list[float | None] = []
        for i, (_, end) in enumerate(self.faults):
            following = self.faults[i + 1][0] if i + 1 < len(self.faults) else float("inf")
            times.append(None if end is None else self.ledger.first_write_ack_after(end, following))
        return times

    @property
    def recovery_seconds(self) -> float | None:
        """The slowest recovery of the scenario's faults; None while one has not recovered."""
        times = self.recovery_times()
        return None if not times or None in times else max(t for t in times if t is not None)

    def check_recovery(self) -> None:
        """Recovery as a property of the scenario: every fault ended, and after each one the
        server acknowledged a data change sent after its end within `recovery_within` seconds
        (before the next fault); after the last one, increments and sets both. Fails with what
        was seen otherwise."""
        assert self.faults, "a ledger scenario marks its fault with load.fault() and load.recovered()"
        problems = []
        for i, ((_, end), took) in enumerate(zip(self.faults, self.recovery_times(), strict=True)):
            which = f"fault {i + 1} of {len(self.faults)}"
            if end is None:
                problems.append(f"{which} never ended (no load.recovered() after load.fault())")
            elif took is None:
                problems.append(f"{which}: no write (increment, set, unset) sent after its end was acknowledged"
                                + (" before the next fault" if i + 1 < len(self.faults) else ""))  # fmt: skip
            elif took > self.recovery_within:
                problems.append(f"{which}: the first write after its end was acknowledged after "
                                f"{took:.1f} s (bound {self.recovery_within:g} s)")  # fmt: skip
        end = self.faults[-1][1]
        if end is not None:
            after = self.ledger.write_acks_sent_after(end)
            missing = [kind for kind in ("incr", "set") if not after.get(kind)]
            if missing:
                problems.append(
                    f"after the last fault no {' and no '.join(missing)} was acknowledged ({after})"
                )
        assert not problems, (
            "the server did not recover: "
            + "; ".join(problems)
            + (f"; answers after the faults: {self.ledger.statuses.get('after', {})}")
        )

    # -- one request ---------------------------------------------------------------------------
    async def _send(
        self, http: httpx.AsyncClient, method: str, path: str, headers: dict[str, str], body: Any = None
    ) -> tuple[int | None, Any]:
        phase = self.phase
        sent = time.monotonic()
        try:
            r = await http.request(method, path, json=body, headers=headers)
        except httpx.TransportError:
            self.ledger.count(phase, "transport")
            self.transport_errors += 1
            return None, None
        self.ledger.sent_at = sent  # the caller reports this answer next, with no await between
        self.ledger.count(phase, r.status_code)
        payload = r.json() if r.headers.get("content-type", "").startswith("application/json") else None
        if r.status_code >= 400:
            code = payload.get("error", {}).get("code") if isinstance(payload, dict) else None
            if code is None:
                self.ledger.violate("unexpected", f"{method} {path}: {r.status_code} without an error code")
            elif r.status_code in (503, 507):
                if code not in FAULT_CODES:
                    self.ledger.violate("bad_fault_answer", f"{method} {path}: {r.status_code} {code}")
                return None, payload  # unknown: the change may have happened
            elif r.status_code != 401:
                self.ledger.violate("unexpected", f"{method} {path} in phase {phase}: {r.status_code} {code}")
        return r.status_code, payload

    # -- the client ----------------------------------------------------------------------------
    async def _client(self, i: int) -> None:
        rnd = random.Random(self.seed * 1000 + i)
        user = self.users[i]
        async with httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout) as http:
            while not self._stop.is_set() and self.ledger.requests < self.max_requests:
                await self._step(http, rnd, user)
                await asyncio.sleep(self.pause)

    async def _step(self, http: httpx.AsyncClient, rnd: random.Random, user: str) -> None:
        live = self.ledger.live(user)
        if not live or (len(live) < 2 and rnd.random() < 0.02):
            await self._login(http, user)
            return
        s = rnd.choice(live)
        r = rnd.random()
        if r < 0.6:
            await self._change(http, s, {"incr": 1}, {"incr": {"n": 1}})
        elif r < 0.72:
            k, v = rnd.choice(KEYS), rnd.randrange(10**6)
            value: Any = f"{v:06d}" * (self.data_bytes // 6) if self.data_bytes else v
            await self._change(http, s, {"set": (k, value)}, {"set": {k: value}})
        elif r < 0.8:
            k = rnd.choice(KEYS)
            await self._change(http, s, {"unset": k}, {"unset": [k]})
        elif r < 0.9:
            await self._read(http, s)
        elif r < 0.94:
            await self._probe_dead(http, rnd, user)
        elif r < 0.985:
            status, _ = await self._send(http, "POST", "/v1/auth/logout", bearer(s.token))
            self.ledger.revoked([s], time.monotonic(), sure=status == 204)
        else:
            await self._logout_all(http, s)

    async def _login(self, http: httpx.AsyncClient, user: str) -> None:
        status, body = await self._send(
            http, "POST", "/v1/auth/login", HEADER, {"username": user, "password": PASSWORD}
        )
        if status == 200:
            self.ledger.logged_in(body["token"], user, time.monotonic())
        elif status is not None:
            self.ledger.violate("unexpected", f"login of {user}: {status} {body}")

    async def _change(self, http: httpx.AsyncClient, s: Tracked, change: dict[str, Any], body: Any) -> None:
        status, payload = await self._send(http, "PATCH", "/v1/session/data", bearer(s.token), body)
        if status == 200:
            self.ledger.check_data(s, payload["data"], pending=change, at=time.monotonic())
        elif status == 401:
            self.ledger.unauthorized(s, payload["error"]["code"], self.phase)
        else:
            self.ledger.unknown(s, change)

    async def _read(self, http: httpx.AsyncClient, s: Tracked) -> None:
        status, payload = await self._send(http, "GET", "/v1/session/data", bearer(s.token))
        if status == 200:
            self.ledger.check_data(s, payload["data"], pending=None, at=time.monotonic())
        elif status == 401:
            self.ledger.unauthorized(s, payload["error"]["code"], self.phase)

    async def _probe_dead(self, http: httpx.AsyncClient, rnd: random.Random, user: str) -> None:
        dead = [
            s
            for s in self.ledger.sessions.values()
            if s.user == user and (s.state is State.REVOKED or s.dead)
        ]
        if not dead:
            return
        s = rnd.choice(dead)
        status, _ = await self._send(http, "GET", "/v1/auth/me", bearer(s.token))
        if status == 200:
            self.ledger.violate("resurrected", f"{user}: a revoked session answers 200 in phase {self.phase}",
                                ack_times=[s.revoked_at] if s.revoked_at else [], user=user)  # fmt: skip

    async def _logout_all(self, http: httpx.AsyncClient, s: Tracked) -> None:
        mine = [t for t in self.ledger.sessions.values() if t.user == s.user and t.state is not State.REVOKED]
        status, payload = await self._send(http, "POST", "/v1/auth/logout-all", bearer(s.token), {})
        if status == 401:
            self.ledger.unauthorized(s, payload["error"]["code"], self.phase)
            return
        self.ledger.revoked(mine, time.monotonic(), sure=status == 204)

    # -- after the fault -----------------------------------------------------------------------
    async def verify(self, base_url: str | None = None, *, patience: float = 20.0) -> None:
        """Check every session of the ledger through the API (retrying 503s and dropped
        connections until `patience` runs out: recovery, not the check, is being timed)."""
        async with httpx.AsyncClient(base_url=base_url or self.base_url, timeout=self.timeout) as http:
            deadline = time.monotonic() + patience
            for s in list(self.ledger.sessions.values()):
                while True:
                    try:
                        r = await http.get("/v1/session/data", headers=bearer(s.token))
                    except httpx.TransportError:
                        r = None
                    if r is not None and r.status_code not in (502, 503, 504):
                        break
                    if time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.2)
                if r is None:
                    self.ledger.violate("unexpected", "final check: no answer")
                    continue
                if r.status_code == 500:
                    self.ledger.violate("status_500", "final check")
                self.ledger.verify_final(s, r.status_code, r.json())
