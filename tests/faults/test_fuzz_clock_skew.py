"""Clock skew: two `huihua serve` processes on one store, one 5 minutes ahead (issue 14 item 2).

Time passing is played by restarting both with HUIHUA_CLOCK_OFFSET moved on by the same amount,
so the skew stays 5 minutes while the sessions (browser: 30 minutes idle) age. Sessions made on
either server work on both while their real deadline is further off than the skew; a revoked
one is dead on both, always; a purge run by the fast process removes no session that is live;
once past every deadline nothing answers 200 again, and a write with a dead cookie creates
nothing (no resurrection, no silent new session).
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "http"))  # servicekit, fuzzkit

from _record_fuzz import record
from fuzzkit import ServerPool, WorkersServe
from servicekit import PASSWORD, huihua_command, serve_env

MINUTE = 60.0
SKEW = 5 * MINUTE
pytestmark = [pytest.mark.slow, pytest.mark.faults, pytest.mark.timeout(240)]


@dataclass
class Tally:
    requests: int = 0
    checked: int = 0
    lost: int = 0  # a live session refused
    resurrected: int = 0  # a dead session served, or a dead cookie turned into a new session
    status_500: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class Browser:
    """One browser's session: its cookie, sent to whichever server it talks to."""

    name: str
    token: str | None = None
    live: bool = True


class Pair:
    """Server A (the right time) and B (SKEW ahead), started again for each moment played."""

    def __init__(self, pool: ServerPool, env: dict[str, str], tally: Tally) -> None:
        self.pool, self.env, self.tally = pool, env, tally
        self.a: WorkersServe | None = None
        self.b: WorkersServe | None = None

    def at(self, shift: float) -> None:
        for server in (self.a, self.b):
            if server is not None:
                server.stop()
        self.a = self.pool.start(workers=1, HUIHUA_CLOCK_OFFSET=str(shift), **self.env)
        self.b = self.pool.start(workers=1, HUIHUA_CLOCK_OFFSET=str(shift + SKEW), **self.env)

    def send(
        self, server: WorkersServe, method: str, path: str, browser: Browser, body: object = None
    ) -> httpx.Response:
        headers = {"Origin": server.url}
        if browser.token:
            headers["Cookie"] = f"sid={browser.token}"
        r = httpx.request(method, server.url + path, headers=headers, json=body, timeout=30)
        self.tally.requests += 1
        if r.status_code >= 500:
            self.tally.status_500 += 1
            self.tally.problems.append(f"{method} {path} on {server.port}: {r.status_code} {r.text[:200]}")
        return r


def issued(r: httpx.Response) -> str | None:
    for line in r.headers.get_list("set-cookie"):
        morsel = SimpleCookie(line).get("sid")
        if morsel is not None and morsel.value and morsel["max-age"] != "0":
            return morsel.value
    return None


def expect(pair: Pair, browsers: list[Browser], moment: str, *, data: dict[str, int]) -> None:
    """Every browser on both servers: live ones see their data, dead ones a 401."""
    tally = pair.tally
    for browser in browsers:
        for server in (pair.a, pair.b):
            assert server is not None
            r = pair.send(server, "GET", "/v1/session/data", browser)
            tally.checked += 1
            where = f"{moment}: {browser.name} on {'A' if server is pair.a else 'B'}"
            if browser.live and (r.status_code != 200 or r.json()["data"] != {"n": data[browser.name]}):
                tally.lost += 1
                tally.problems.append(f"{where}: live session refused: {r.status_code} {r.text[:200]}")
            if not browser.live:
                if r.status_code == 200:
                    tally.resurrected += 1
                    tally.problems.append(f"{where}: dead session served: {r.text[:200]}")
                elif r.status_code != 401:
                    tally.problems.append(f"{where}: {r.status_code} {r.text[:200]}")


def purge(env: dict[str, str], cwd: Path, offset: float) -> None:
    """`huihua purge` as a process whose clock reads `offset` ahead."""
    done = subprocess.run(  # noqa: PLW1510 - the return code is asserted with the output
        [*huihua_command(), "purge"], env=serve_env(cwd, HUIHUA_CLOCK_OFFSET=str(offset), **env), cwd=cwd,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def scenario(store: str, env: dict[str, str], tmp_path: Path) -> None:
    started = time.monotonic()
    tally = Tally()
    with ServerPool(tmp_path) as pool:
        pair = Pair(pool, env, tally)
        pair.at(0)
        assert pair.a is not None and pair.b is not None
        a, b = pair.a, pair.b
        created = httpx.post(
            f"{a.url}/v1/accounts", json={"username": "skew", "password": PASSWORD}, timeout=30
        )
        assert created.status_code == 201, created.text
        # name -> (made on, then written through, revoked by)
        plan = {
            "login-on-A": (a, b, None), "login-on-B": (b, a, None),
            "visitor-on-A": (a, b, None), "visitor-on-B": (b, a, None),
            "made-on-A-revoked-by-B": (a, b, b), "made-on-B-revoked-by-A": (b, a, a),
        }  # fmt: skip
        browsers = [Browser(name) for name in plan]
        data: dict[str, int] = {}
        for browser in browsers:
            home = plan[browser.name][0]
            if browser.name.startswith("visitor"):
                r = pair.send(home, "PATCH", "/v1/session/data", browser, {"incr": {"n": 1}})
            else:
                r = pair.send(
                    home, "POST", "/v1/auth/login", browser, {"username": "skew", "password": PASSWORD}
                )
                if r.status_code == 200:
                    browser.token = issued(r)
                    r = pair.send(home, "PATCH", "/v1/session/data", browser, {"incr": {"n": 1}})
            assert r.status_code == 200, r.text
            browser.token = browser.token or issued(r)
            assert browser.token
            data[browser.name] = 1
        for browser in browsers:  # each one written through the other server too
            r = pair.send(plan[browser.name][1], "PATCH", "/v1/session/data", browser, {"incr": {"n": 10}})
            assert r.status_code == 200, r.text
            data[browser.name] += 10
        for browser in browsers:
            if (killer := plan[browser.name][2]) is not None:
                assert (
                    pair.send(killer, "POST", "/v1/auth/logout", Browser("", browser.token)).status_code
                    == 204
                )
                browser.live = False
        expect(pair, browsers, "at once", data=data)

        pair.at(20 * MINUTE)  # 20 minutes on: 10+ minutes left, more than the skew
        expect(pair, browsers, "20 min", data=data)
        purge(env, tmp_path, 20 * MINUTE + SKEW)  # the fast process sweeps
        expect(pair, browsers, "20 min, after the fast process purged", data=data)

        # past every deadline: the last activity was B's (its clock reads 25 min), idle is 30
        pair.at(20 * MINUTE + SKEW + 30 * MINUTE + SKEW + MINUTE)
        for browser in browsers:
            browser.live = False
        expect(pair, browsers, "after the deadline", data=data)
        assert pair.a is not None and pair.b is not None
        for browser in browsers:  # a write with a dead cookie revives nothing and makes nothing
            for server in (pair.a, pair.b):
                r = pair.send(
                    server, "PATCH", "/v1/session/data", Browser("", browser.token), {"incr": {"n": 1}}
                )
                if r.status_code != 401 or issued(r):
                    tally.resurrected += 1
                    tally.problems.append(
                        f"dead cookie of {browser.name} written: {r.status_code} {r.text[:200]}"
                    )
        purge(env, tmp_path, 20 * MINUTE + SKEW + 30 * MINUTE + SKEW + MINUTE)
        expect(pair, browsers, "after the deadline and a purge", data=data)
        logs = "".join(s.log() for s in pool.started)
    record(
        scenario=f"clock-skew-{store}",
        store=store,
        description="two servers on one store, one 5 min ahead; sessions aged 0, 20 and 61 min by restarts",
        requests=tally.requests,
        faults_injected=1,
        acked_writes_checked=tally.checked,
        lost=tally.lost,
        resurrected=tally.resurrected,
        double_applied=0,
        status_500=tally.status_500,
        recovery_seconds=None,
        duration_seconds=time.monotonic() - started,
        notes="; ".join(tally.problems)[:2000],
    )
    assert tally.problems == [], tally.problems
    assert "Traceback" not in logs, logs[-3000:]


def test_clock_skew_sqlite(tmp_path: Path) -> None:
    scenario("sqlite", {"HUIHUA_STORE": f"sqlite:///{tmp_path}/huihua.db"}, tmp_path)


def test_clock_skew_redis(tmp_path: Path, redis_url: str) -> None:
    scenario(
        "redis", {"HUIHUA_STORE": redis_url, "HUIHUA_DATABASE": f"sqlite:///{tmp_path}/accounts.db"}, tmp_path
    )
