"""A WeChat login storm with the emulator's faults (issue 14 item 2): 200 logins of 50 users,
50 at a time, against `huihua serve --workers 2 --emulator`, while jscode2session answers
-1 (system busy), 45011 (minute quota) and takes longer than the client's 5 s timeout.

Each client behaves as the SDK does: on 503/429 it retries with the same code; when a code was
spent by a timed-out exchange (400 wechat_code_used after a 503) it asks wx.login for a new one.
Some logins send their code twice at once, some again after success. Checked: no 500; one user
per openid (no duplicates, in the answers or the accounts database); one token per code (the
idempotent exchange: the same code twice gives one session, without an Idempotency-Key header,
which the exchange does not need today); every session handed out works; WeChat saw each code
succeed at most once.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "http"))  # servicekit, fuzzkit

from _record_fuzz import record
from fuzzkit import ServerPool
from servicekit import free_port

pytestmark = [pytest.mark.slow, pytest.mark.faults, pytest.mark.timeout(240)]
USERS, LOGINS_PER_USER, PARALLEL = 50, 4, 50
CODE2SESSION = "/sns/jscode2session"
FAULT_WAVES = [  # (seconds into the storm, fault)
    (0.0, {"errcode": -1, "times": 30}),
    (0.5, {"errcode": 45011, "times": 15}),
    (1.0, {"latency_ms": 5500, "times": 4}),
    (1.5, {"errcode": -1, "times": 20}),
    (2.0, {"errcode": 45011, "times": 10}),
]
EXPECTED_ERRORS = {503: {"wechat_unavailable"}, 429: {"wechat_rate_limited"}}


@dataclass
class Storm:
    service: httpx.AsyncClient
    emulator: httpx.AsyncClient
    requests: int = 0
    status: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    problems: list[str] = field(default_factory=list)
    users_of: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # openid -> user ids
    tokens_of: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # code -> tokens
    sessions: dict[str, str] = field(default_factory=dict)  # token -> user id
    gave_up: int = 0

    async def code(self, openid: str) -> str:
        r = await self.emulator.post("/_emulator/login", json={"openid": openid})
        assert r.status_code == 200, r.text
        return str(r.json()["code"])

    async def exchange(self, code: str, key: str) -> httpx.Response:
        """One attempt at `code`, with the attempt's Idempotency-Key (as the SDK sends it): a
        retry of the same code collects the same outcome only with the same key."""
        headers = {"X-Session-Transport": "header", "Idempotency-Key": key}
        r = await self.service.post("/v1/auth/wechat", json={"code": code}, headers=headers)
        self.requests += 1
        self.status[r.status_code] += 1
        if r.status_code >= 500 and r.status_code not in EXPECTED_ERRORS:
            self.problems.append(f"{r.status_code} {r.text[:200]}")
        return r

    def took(self, openid: str, code: str, r: httpx.Response) -> None:
        body = r.json()
        self.users_of[openid].add(body["user"]["id"])
        self.tokens_of[code].add(body["token"])
        self.sessions[body["token"]] = body["user"]["id"]
        if r.headers.get("x-session-token") != body["token"]:
            self.problems.append("X-Session-Token and the body disagree")

    async def login(self, openid: str, mode: str) -> None:
        for _ in range(8):  # wx.login again, up to 8 times
            code, spent_by_timeout = await self.code(openid), False
            key = secrets.token_hex(16)  # one login attempt: this code, retried with this key
            for _ in range(12):  # the same code, while WeChat is busy
                if mode == "twice-at-once":
                    answers = list(await asyncio.gather(self.exchange(code, key), self.exchange(code, key)))
                else:
                    answers = [await self.exchange(code, key)]
                done = [a for a in answers if a.status_code == 200]
                for a in done:
                    self.took(openid, code, a)
                if done and mode == "again-after-success":
                    again = await self.exchange(code, key)
                    if again.status_code == 200:
                        self.took(openid, code, again)
                    else:
                        self.problems.append(f"a replayed code got {again.status_code} {again.text[:200]}")
                if len(done) == len(answers):
                    return
                for a in answers:
                    if a.status_code == 200:
                        continue
                    error = a.json().get("error", {}).get("code")
                    if a.status_code == 400 and error == "wechat_code_used" and spent_by_timeout:
                        break  # a timed-out exchange spent it at WeChat: a new code
                    if error not in EXPECTED_ERRORS.get(a.status_code, set()):
                        self.problems.append(f"unexpected {a.status_code} {a.text[:200]}")
                        return
                    spent_by_timeout = spent_by_timeout or a.status_code == 503
                else:
                    await asyncio.sleep(0.2)
                    continue
                break
        self.gave_up += 1


def test_wechat_login_storm(tmp_path: Path) -> None:
    started = time.monotonic()
    emulator_port = free_port()
    with ServerPool(tmp_path) as pool:
        server = pool.start(
            workers=2,
            args=("--emulator", "--emulator-port", str(emulator_port)),
            HUIHUA_SECRET_KEY="storm-secret-key-of-thirty-two-characters",
            HUIHUA_WECHAT_LOGINS_PER_IP_MINUTE="100000",
        )
        storm_result = asyncio.run(run_storm(server.url, f"http://127.0.0.1:{emulator_port}"))
        storm, calls, verified = storm_result
        log = server.log()
    db = sqlite3.connect(tmp_path / "huihua.db")
    users_in_db = db.execute("SELECT count(*) FROM huihua_user").fetchone()[0]
    identities = db.execute("SELECT count(*) FROM huihua_wechat_identity").fetchone()[0]
    db.close()

    duplicates = {o: ids for o, ids in storm.users_of.items() if len(ids) != 1}
    split_codes = {c: t for c, t in storm.tokens_of.items() if len(t) != 1}
    successes: dict[str, int] = defaultdict(int)
    for call in calls:
        if call["path"] == CODE2SESSION and call["errcode"] == 0:
            successes[call["params"].get("js_code", "")] += 1
    spent_twice = [c for c, n in successes.items() if n > 1]
    faults = sum(int(f["times"]) for _, f in FAULT_WAVES)
    record(
        scenario="wechat-login-storm",
        store="sqlite",
        description=f"{USERS * LOGINS_PER_USER} WeChat logins of {USERS} users, {PARALLEL} at a time, "
        "jscode2session busy (-1), over quota (45011) and slower than the timeout",
        requests=storm.requests,
        faults_injected=faults,
        acked_writes_checked=verified,
        lost=len(storm.sessions) - verified,
        resurrected=0,
        double_applied=len(duplicates) + len(split_codes) + len(spent_twice) + max(0, users_in_db - USERS),
        status_500=storm.status.get(500, 0),
        recovery_seconds=None,
        duration_seconds=time.monotonic() - started,
        notes=f"answers {dict(sorted(storm.status.items()))}; users in db {users_in_db}; gave up {storm.gave_up}; "
        + "; ".join(storm.problems)[:1500],
    )
    assert storm.problems == [], storm.problems[:5]
    assert storm.status.get(500, 0) == 0
    assert duplicates == {}, (
        f"{len(duplicates)} openids with several users, e.g. {list(duplicates.items())[:2]}"
    )
    assert users_in_db == USERS and identities == USERS, (users_in_db, identities)
    assert split_codes == {}, f"one code, several sessions: {split_codes}"
    assert spent_twice == []
    assert verified == len(storm.sessions)
    assert len(storm.users_of) == USERS and storm.gave_up == 0  # everyone got in, eventually
    assert storm.status.get(503, 0) > 0 and storm.status.get(429, 0) > 0  # the faults did land
    assert "Traceback" not in log, log[-3000:]


async def run_storm(base: str, emulator_base: str) -> tuple[Storm, list[dict[str, Any]], int]:
    limits = httpx.Limits(max_connections=PARALLEL * 2)
    async with (
        httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as service,
        httpx.AsyncClient(base_url=emulator_base, timeout=60, limits=limits) as emulator,
    ):
        storm = Storm(service, emulator)
        gate = asyncio.Semaphore(PARALLEL)
        modes = ["plain", "twice-at-once", "again-after-success", "plain"]

        async def one(i: int) -> None:  # a user's logins side by side: first logins race each other
            async with gate:
                await storm.login(f"storm-user-{i // LOGINS_PER_USER:02d}", modes[i % len(modes)])

        async def faults() -> None:
            began = time.monotonic()
            for at, fault in FAULT_WAVES:
                await asyncio.sleep(max(0.0, began + at - time.monotonic()))
                r = await emulator.post("/_emulator/faults", json={"path": CODE2SESSION, **fault})
                assert r.status_code == 200, r.text

        await asyncio.gather(faults(), *(one(i) for i in range(USERS * LOGINS_PER_USER)))
        verified = 0
        for token, user_id in storm.sessions.items():
            me = await service.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
            if me.status_code == 200 and me.json()["user"]["id"] == user_id:
                verified += 1
            else:
                storm.problems.append(f"a session handed out does not work: {me.status_code} {me.text[:200]}")
        calls = (await emulator.get("/_emulator/calls")).json()["calls"]
        return storm, calls, verified
