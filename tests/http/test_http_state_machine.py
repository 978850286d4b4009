"""A Hypothesis state machine over the HTTP API of a real `huihua serve --workers 2`, checked
against a model (issue 14 item 3).

Devices (header clients and browsers with a cookie jar) log in as a few users, change session
data (set, unset, incr), log in again (rotation; another user's session is never inherited),
log out, log out everywhere (keeping the current session or not), revoke sessions by id, and
replay old or forged tokens. After every step the answer must match the model exactly: status,
error code, data, which sessions a user has; and `probe` asks /v1/introspect about any token
ever issued: live ones have the model's data, dead ones say `session_revoked`. No answer is a
5xx. Bounded: 25 examples of up to 40 steps, about a minute on two shared cores. A failure
prints its steps unshrunk (each replay is real requests); HUIHUA_FUZZ_SHRINK=1 shrinks them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx
import pytest
from fuzzkit import ServerPool
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from servicekit import PASSWORD, SERVICE_KEY

from huihua.core.tokens import new_token

USERS = ("sm-ann", "sm-ben", "sm-cat")
KEYS = ("a", "b", "n")
MAX_DEVICES = 4
PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink)
values = st.one_of(
    st.integers(-5, 5),
    st.text("xy", max_size=2),
    st.booleans(),
    st.none(),
    st.lists(st.integers(0, 3), max_size=2),
)


@dataclass
class Sess:
    token: str
    sid: str | None  # the public id, when an answer told it
    user: str | None  # username; None for an anonymous session
    data: dict[str, Any]
    live: bool = True


@dataclass
class Device:
    kind: str  # "header" or "browser"
    token: str | None = None


@dataclass
class Answer:
    status: int
    body: Any
    issued: str | None  # a token the server handed out (X-Session-Token or the cookie)
    cleared: bool  # the browser was told to drop its cookie


@dataclass
class World:
    base: str
    http: httpx.Client
    user_ids: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    seen: dict[str, int] = field(default_factory=dict)  # what the examples exercised

    def saw(self, what: str) -> None:
        self.seen[what] = self.seen.get(what, 0) + 1


CURRENT: list[World] = []  # the world of the running test (a state machine takes no arguments)


def world() -> World:
    return CURRENT[-1]


def call(device: Device, method: str, path: str, body: Any = None) -> Answer:
    w = world()
    headers: dict[str, str] = {}
    if device.kind == "header":
        headers = (
            {"Authorization": f"Bearer {device.token}"} if device.token else {"X-Session-Transport": "header"}
        )
    else:
        if device.token:
            headers["Cookie"] = f"sid={device.token}"
        if method not in ("GET", "HEAD"):
            headers["Origin"] = w.base
    r = w.http.request(method, path, headers=headers, json=body)
    w.http.cookies.clear()  # the device's jar is the model's, not httpx's
    w.requests += 1
    assert r.status_code < 500, (method, path, r.status_code, r.text)
    payload = r.json() if r.headers.get("content-type", "").startswith("application/json") else None
    if r.status_code >= 400:
        assert set(payload["error"]) >= {"code", "message"}, payload
    issued, cleared = None, False
    if device.kind == "header":
        issued = r.headers.get("x-session-token")
        assert "set-cookie" not in r.headers, "a header client got a cookie"
        if isinstance(payload, dict) and "token" in payload:
            assert payload["token"] == issued
    else:
        assert "x-session-token" not in r.headers and not (isinstance(payload, dict) and "token" in payload)
        for line in r.headers.get_list("set-cookie"):
            morsel = SimpleCookie(line).get("sid")
            assert morsel is not None, line
            if morsel.value and morsel["max-age"] != "0":
                issued = morsel.value
            else:
                cleared = True
    return Answer(r.status_code, payload, issued, cleared)


def service(path: str, body: Any = None, method: str = "POST") -> Any:
    w = world()
    r = w.http.request(method, path, json=body, headers={"X-Service-Key": SERVICE_KEY})
    w.requests += 1
    assert r.status_code < 300, r.text
    return r.json() if r.content else None


def code(answer: Answer) -> str:
    return str(answer.body["error"]["code"])


class ApiModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.devices: list[Device] = [Device("header"), Device("browser")]
        self.sessions: dict[str, Sess] = {}

    @initialize()
    def clean_slate(self) -> None:
        """Earlier examples' sessions of our users are not in this model: end them."""
        for user_id in world().user_ids.values():
            service(f"/v1/admin/users/{user_id}/sessions", method="DELETE")

    # -- helpers -------------------------------------------------------------------------------
    def device(self, i: int) -> Device:
        return self.devices[i % len(self.devices)]

    def session_of(self, device: Device) -> Sess | None:
        return self.sessions.get(device.token) if device.token else None

    def expect_dead(self, device: Device, answer: Answer) -> None:
        """A token the server does not know, or a dead one: 401 with the reason."""
        s = self.session_of(device)
        assert answer.status == 401, answer
        assert code(answer) == ("session_revoked" if s is not None else "not_authenticated"), answer
        if device.kind == "browser":
            assert answer.cleared, "a browser kept a dead cookie"
            device.token = None

    def issue(
        self, device: Device, answer: Answer, sid: str | None, user: str | None, data: dict[str, Any]
    ) -> Sess:
        assert answer.issued, f"no token issued: {answer}"
        assert answer.issued not in self.sessions, "a token was issued twice"
        s = Sess(answer.issued, sid, user, data)
        self.sessions[s.token] = s
        device.token = s.token
        return s

    def live_of(self, user: str) -> list[Sess]:
        return [s for s in self.sessions.values() if s.live and s.user == user]

    # -- rules ---------------------------------------------------------------------------------
    @precondition(lambda self: len(self.devices) < MAX_DEVICES)
    @rule(kind=st.sampled_from(["header", "browser"]))
    def new_device(self, kind: str) -> None:
        self.devices.append(Device(kind))

    @rule(d=st.integers(0, MAX_DEVICES), user=st.sampled_from(USERS))
    def login(self, d: int, user: str) -> None:
        device = self.device(d)
        current = self.session_of(device)
        answer = call(device, "POST", "/v1/auth/login", {"username": user, "password": PASSWORD})
        assert answer.status == 200, answer
        assert answer.body["user"]["username"] == user
        carried: dict[str, Any] = {}
        if current is not None and current.live:
            world().saw(
                f"login from {'anonymous' if current.user is None else 'own' if current.user == user else 'another user'}{' with data' if current.data else ''}"
            )
            if current.user in (None, user):
                carried = current.data  # rotation: the data comes along
            current.live = False  # rotated away, or (another user's) revoked
            assert answer.body["session"]["id"] != current.sid
        self.issue(device, answer, answer.body["session"]["id"], user, dict(carried))

    # the same two rules again, on a device with a live session: what rotation is about
    def has_live_device(self) -> bool:
        return any((s := self.session_of(d)) is not None and s.live for d in self.devices)

    def live_device(self, pick: int) -> int:
        live = [i for i, d in enumerate(self.devices) if (s := self.session_of(d)) is not None and s.live]
        return live[pick % len(live)]

    @precondition(has_live_device)
    @rule(pick=st.integers(0, MAX_DEVICES), user=st.sampled_from(USERS))
    def login_on_a_live_session(self, pick: int, user: str) -> None:
        self.login(self.live_device(pick), user)

    @precondition(has_live_device)
    @rule(
        pick=st.integers(0, MAX_DEVICES),
        set_=st.dictionaries(st.sampled_from(KEYS), values, min_size=1, max_size=2),
    )
    def write_on_a_live_session(self, pick: int, set_: dict[str, Any]) -> None:
        self.change_data(self.live_device(pick), set_, [], {})

    @rule(d=st.integers(0, MAX_DEVICES))
    def read_data(self, d: int) -> None:
        device = self.device(d)
        s = self.session_of(device)
        answer = call(device, "GET", "/v1/session/data")
        if device.token is None:
            assert (answer.status, answer.body, answer.issued) == (200, {"data": {}}, None)
        elif s is None or not s.live:
            self.expect_dead(device, answer)
        else:
            assert answer.status == 200, answer
            assert answer.body["data"] == s.data

    @rule(
        d=st.integers(0, MAX_DEVICES),
        set_=st.dictionaries(st.sampled_from(KEYS), values, max_size=2),
        unset=st.lists(st.sampled_from(KEYS), max_size=2, unique=True),
        incr=st.dictionaries(st.sampled_from(KEYS), st.integers(-3, 3), max_size=2),
    )
    def change_data(self, d: int, set_: dict[str, Any], unset: list[str], incr: dict[str, int]) -> None:
        device = self.device(d)
        s = self.session_of(device)
        body = {"set": set_, "unset": unset, "incr": incr}
        answer = call(device, "PATCH", "/v1/session/data", body)
        if set(set_) & set(unset) or (set(set_) | set(unset)) & set(incr):
            assert answer.status == 400 and answer.issued is None, answer  # refused before anything
            return
        if device.token is not None and (s is None or not s.live):
            self.expect_dead(device, answer)
            return
        if s is None:
            s = self.issue(device, answer, None, None, {})  # a visitor's first write
        else:
            assert answer.issued is None, answer
        expected = {**s.data, **set_}
        for key in unset:
            expected.pop(key, None)
        for key, by in incr.items():
            value = expected.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, int):
                assert answer.status == 400 and code(answer) == "not_an_integer", answer
                return  # atomic: nothing of the change applied
            expected[key] = value + by
        assert answer.status == 200, answer
        assert answer.body["data"] == expected
        s.data = expected

    @rule(d=st.integers(0, MAX_DEVICES))
    def me(self, d: int) -> None:
        device = self.device(d)
        s = self.session_of(device)
        answer = call(device, "GET", "/v1/auth/me")
        if device.token is not None and (s is None or not s.live):
            self.expect_dead(device, answer)
        elif s is None or s.user is None:
            assert answer.status == 401 and code(answer) == "not_authenticated", answer
        else:
            assert answer.status == 200, answer
            assert answer.body["user"]["username"] == s.user
            assert answer.body["session"]["id"] == s.sid

    @rule(d=st.integers(0, MAX_DEVICES))
    def list_sessions(self, d: int) -> None:
        device = self.device(d)
        s = self.session_of(device)
        answer = call(device, "GET", "/v1/sessions")
        if device.token is not None and (s is None or not s.live):
            self.expect_dead(device, answer)
        elif s is None or s.user is None:
            assert answer.status == 401 and code(answer) == "not_authenticated", answer
        else:
            assert answer.status == 200, answer
            listed = {item["id"]: item["current"] for item in answer.body["sessions"]}
            assert set(listed) == {x.sid for x in self.live_of(s.user)}
            assert [sid for sid, current in listed.items() if current] == [s.sid]

    @rule(d=st.integers(0, MAX_DEVICES))
    def logout(self, d: int) -> None:
        device = self.device(d)
        s = self.session_of(device)
        answer = call(device, "POST", "/v1/auth/logout")
        assert answer.status == 204, answer
        if s is not None:
            s.live = False
        if device.kind == "browser" and device.token is not None:
            assert answer.cleared
        device.token = None  # a header client forgets its token too

    @rule(d=st.integers(0, MAX_DEVICES), keep=st.booleans())
    def logout_all(self, d: int, keep: bool) -> None:
        device = self.device(d)
        s = self.session_of(device)
        answer = call(device, "POST", "/v1/auth/logout-all", {"keep_current": keep})
        if device.token is not None and (s is None or not s.live):
            self.expect_dead(device, answer)
            return
        if s is None:
            assert answer.status == 401 and code(answer) == "not_authenticated", answer
            return
        assert answer.status == 204, answer
        for other in self.live_of(s.user) if s.user is not None else [s]:
            if not (keep and other is s):
                other.live = False
        if not keep:
            assert answer.cleared or device.kind == "header"
            device.token = None

    @precondition(lambda self: any(s.sid for s in self.sessions.values()))
    @rule(d=st.integers(0, MAX_DEVICES), pick=st.integers(0, 10_000))
    def revoke_by_id(self, d: int, pick: int) -> None:
        device = self.device(d)
        s = self.session_of(device)
        known = [x for x in self.sessions.values() if x.sid]
        target = known[pick % len(known)]
        answer = call(device, "DELETE", f"/v1/sessions/{target.sid}")
        if device.token is not None and (s is None or not s.live):
            self.expect_dead(device, answer)
        elif s is None or s.user is None:
            assert answer.status == 401 and code(answer) == "not_authenticated", answer
        elif target.live and target.user == s.user:
            assert answer.status == 204, answer
            target.live = False
            if target is s:
                assert answer.cleared or device.kind == "header"
                device.token = None
        else:
            assert answer.status == 404 and code(answer) == "session_not_found", answer  # not yours

    @precondition(lambda self: bool(self.sessions))
    @rule(d=st.integers(0, MAX_DEVICES), pick=st.integers(0, 10_000))
    def replay_a_token(self, d: int, pick: int) -> None:
        """A device presents any token ever issued (a stale copy, another device's)."""
        self.device(d).token = list(self.sessions)[pick % len(self.sessions)]

    @rule(d=st.integers(0, MAX_DEVICES))
    def forge_a_token(self, d: int) -> None:
        self.device(d).token = new_token(None)

    @precondition(lambda self: bool(self.sessions))
    @rule(pick=st.integers(0, 10_000))
    def probe(self, pick: int) -> None:
        self.check(list(self.sessions.values())[pick % len(self.sessions)])

    def check(self, s: Sess) -> None:
        found = service("/v1/introspect", {"token": s.token})
        assert found["active"] is s.live, (s, found)
        if s.live:
            assert found["data"] == s.data
            assert (found["user"] or {}).get("username") == s.user
            if s.sid is not None:
                assert found["session"]["id"] == s.sid
            s.sid = found["session"]["id"]
        else:
            assert found["reason"] == "session_revoked", found

    @invariant()
    def devices_hold_only_issued_or_forged_tokens(self) -> None:
        for device in self.devices:
            assert device.token is None or len(device.token) == 47

    def teardown(self) -> None:
        for s in self.sessions.values():
            self.check(s)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_http_api_matches_the_model(tmp_path: Path) -> None:
    with ServerPool(tmp_path) as pool:
        server = pool.start(workers=2, HUIHUA_ANONYMOUS_SESSIONS_PER_IP_MINUTE="1000000")
        with httpx.Client(base_url=server.url, timeout=30) as http:
            w = World(server.url, http)
            CURRENT.append(w)
            for user in USERS:
                r = http.post("/v1/accounts", json={"username": user, "password": PASSWORD})
                assert r.status_code == 201, r.text
                w.user_ids[user] = r.json()["user"]["id"]
            try:
                run_state_machine_as_test(
                    ApiModel,
                    settings=settings(
                        max_examples=25,
                        stateful_step_count=40,
                        deadline=None,
                        suppress_health_check=list(HealthCheck),
                        derandomize=True,
                        database=None,
                        # every replay is real requests: shrinking is opt-in, so CI time stays bounded
                        phases=PHASES if os.environ.get("HUIHUA_FUZZ_SHRINK") else PHASES[:-1],
                    ),
                )
            finally:
                print(f"state machine: {w.requests} requests; {sorted(w.seen.items())}")
                CURRENT.remove(w)
        assert "Traceback" not in server.log(), server.log()[-3000:]
