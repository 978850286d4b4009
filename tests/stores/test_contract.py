"""The store contract: one suite, every store (memory, sqlite, redis, postgres) x (sync, async).

Item numbers (C1, E7, K3 ...) are docs/security-checklist.md's. Tests drive stores through the
session manager with a fake clock, and look at what is stored through `h.backend` where they must.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from huihua.core.clock import FakeClock
from huihua.core.data import data_size
from huihua.core.errors import (
    NotAnInteger,
    SessionDataError,
    SessionDataTooLarge,
    SessionExpired,
    SessionGone,
    SessionInvalid,
    SessionRevoked,
    SessionUnknown,
    StoreUnavailable,
)
from huihua.core.events import SessionEvent
from huihua.core.policy import HOUR, MINUTE
from huihua.core.record import SessionRecord
from huihua.core.session import Session
from huihua.core.tokens import new_session_id, new_token, session_key

from .conftest import PERSISTENT, REDIS_KINDS, Facade, Harness, Runner

LIMIT = 64 * 1024


def only(*kinds: str) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("kind", [pytest.param(k, id=k) for k in kinds])


# -- correctness ----------------------------------------------------------------------------------
def test_c1_new_visitor_writes_nothing(h: Harness) -> None:
    token = new_token(None)
    with pytest.raises(SessionUnknown):
        h.m.load(token)
    assert h.m.get(token) is None
    assert h.m.get(None) is None
    assert h.m.get("") is None
    assert h.spy.writes == []
    assert h.backend.sessions() == 0


def test_c2_round_trip_update_delete_and_empty(h: Harness) -> None:
    s = h.m.create(data={"cart": [1, 2], "n": 1, "name": "张三"})
    loaded = h.m.load(s.token)
    assert dict(loaded) == {"cart": [1, 2], "n": 1, "name": "张三"}
    loaded["cart"].append(3)  # a nested change is seen too
    loaded["x"] = {"y": None}
    del loaded["n"]
    h.m.save(loaded)
    again = h.m.load(s.token)
    assert dict(again) == {"cart": [1, 2, 3], "x": {"y": None}, "name": "张三"}
    again.clear()
    h.m.save(again)
    assert dict(h.m.load(s.token)) == {}  # emptied, and still saved
    assert h.backend.sessions() == 1
    empty = h.m.load(s.token)
    empty["back"] = True
    h.m.save(empty)
    assert dict(h.m.load(s.token)) == {"back": True}


def test_c12_n_logins_give_n_distinct_valid_tokens(h: Harness) -> None:
    sessions = [h.m.login(None, "alice", ip=f"10.0.0.{i}") for i in range(5)]
    assert len({s.token for s in sessions}) == 5
    assert len({s.id for s in sessions}) == 5
    for s in sessions:
        assert h.m.load(s.token).user_id == "alice"
    assert sorted(x.id for x in h.m.list_user("alice")) == sorted(s.id for s in sessions)


def test_three_reasons_for_401(h: Harness) -> None:
    with pytest.raises(SessionUnknown):
        h.m.load(new_token(None))
    expiring = h.m.create(client="browser")
    revoked = h.m.create(client="miniprogram")
    h.m.revoke(revoked.token)
    h.clock.advance(31 * MINUTE)
    with pytest.raises(SessionExpired):
        h.m.load(expiring.token)
    with pytest.raises(SessionRevoked):
        h.m.load(revoked.token)


# -- expiry ---------------------------------------------------------------------------------------
def test_e1_idle_timeout_boundary_and_sliding(h: Harness) -> None:
    s = h.m.create(client="browser")  # 30 minutes idle
    untouched = h.m.create(client="browser")
    h.clock.advance(30 * MINUTE - 1)
    loaded = h.m.load(s.token)  # valid at idle - 1 s, and extends
    assert loaded.record.last_seen_at == h.clock.now()
    h.m.load(untouched.token, touch=False)
    h.clock.advance(30 * MINUTE - 1)
    assert h.m.load(s.token).id == s.id  # the deadline slid
    h.clock.advance(30 * MINUTE + 1)
    with pytest.raises(SessionExpired):
        h.m.load(s.token)
    with pytest.raises(SessionExpired):
        h.m.load(untouched.token)


def test_e2_absolute_lifetime_despite_activity(h: Harness) -> None:
    s = h.m.create(client="browser")  # 12 hours absolute
    start = h.clock.now()
    while h.clock.now() + 25 * MINUTE < start + 12 * HOUR:
        h.clock.advance(25 * MINUTE)
        h.m.load(s.token)
    h.clock.set(start + 12 * HOUR - 1)
    h.m.load(s.token)
    h.clock.set(start + 12 * HOUR + 1)
    with pytest.raises(SessionExpired):
        h.m.load(s.token)


def test_e3_an_expired_session_is_not_resurrected(h: Harness) -> None:
    s = h.m.create(data={"a": 1})
    loaded = h.m.load(s.token)
    h.clock.advance(31 * MINUTE)
    loaded["a"] = 2
    with pytest.raises(SessionGone):
        h.m.save(loaded)
    with pytest.raises(SessionGone):
        h.m.set_expiry(loaded, 3600)
    with pytest.raises(SessionGone):
        h.m.rotate(loaded)
    late_touch = h.m.raw.policy.touched(s.record.timing, h.clock.now())
    assert h.store.update(s.record.key, h.clock.now(), timing=late_touch, max_bytes=LIMIT) is None
    with pytest.raises(SessionExpired):
        h.m.load(s.token)
    stored = h.store.get(s.record.key)
    assert stored.data == {"a": 1}
    assert stored.version == s.record.version
    assert stored.expires_at == s.record.expires_at


def test_e6_purge_deletes_only_expired_and_bounds_the_store(h: Harness) -> None:
    live = [h.m.create(client="miniprogram", data={"i": i}) for i in range(3)]  # 2 days idle
    dead = [h.m.create(client="browser") for _ in range(4)]  # 30 minutes idle
    tombstone = h.m.create(client="miniprogram")
    h.m.revoke(tombstone.token)
    h.clock.advance(HOUR - 30 * MINUTE + 1)
    last_second = h.m.create(client="browser")  # 1 second left when the purge runs
    h.clock.advance(30 * MINUTE - 1)
    assert h.m.purge(batch_size=2) == 4
    assert h.backend.sessions() == 5  # three live, one in its last second, a tombstone
    h.m.load(last_second.token, touch=False)
    h.clock.advance(1)
    assert h.m.purge() == 1  # exactly at its deadline
    assert h.backend.sessions() == 4  # the three live ones and a tombstone still in its lifetime
    for s in live:
        assert h.m.load(s.token)["i"] == s["i"]
    for s in dead:
        with pytest.raises(SessionUnknown):
            h.m.load(s.token)
    with pytest.raises(SessionRevoked):
        h.m.load(tombstone.token)
    assert h.m.count() == 3
    for _ in range(4):  # churn: the store stays bounded
        for _ in range(10):
            h.m.create(client="browser")
        h.clock.advance(HOUR)
        h.m.purge(batch_size=7)
        assert h.backend.sessions() == 4
    h.clock.advance(31 * 24 * HOUR)
    assert h.m.purge() == 4
    assert h.backend.sessions() == 0


@only(*REDIS_KINDS)
def test_e7_every_redis_key_has_a_ttl_after_every_write_path(h: Harness) -> None:
    """Every key but the users' marks, which must outlive eviction; and a mark exists only for
    a user who had a revoke-all or a block."""
    from huihua.stores.redis import RedisBase

    marked: set[str] = set()

    def check(after: str) -> None:
        immortal = h.backend.immortal()  # type: ignore[attr-defined]
        assert [(k, t) for k, t in immortal if not k.startswith("hh:m:")] == [], after
        assert {k for k, t in immortal} == {RedisBase.mark_key(u) for u in marked}, after
        assert all(t == -1 for _, t in immortal), after  # present, without a TTL

    anon = h.m.create(data={"cart": [1]}, ip="1.1.1.1")
    check("create")
    empty = h.m.create()
    check("create without data")
    h.m.update(h.m.load(empty.token), incr={"n": 1})
    check("incr creating the data hash")
    loaded = h.m.load(anon.token)
    h.m.update(loaded, set={"a": 1}, unset=["cart"], incr={"n": 2})
    check("update")
    h.clock.advance(2 * MINUTE)
    h.m.load(anon.token)
    check("touch")
    user = h.m.login(h.m.load(anon.token), "ttl-user")  # rotation to another slot
    check("rotate across slots")
    user = h.m.rotate(h.m.load(user.token))
    check("rotate on one slot")
    h.m.set_expiry(h.m.load(user.token), 7 * 24 * HOUR)
    check("set_expiry")
    h.m.set_expiry(h.m.load(user.token), 0)
    check("set_expiry(0)")
    cleared = h.m.load(user.token)
    cleared.clear()
    h.m.save(cleared)
    check("clear")
    with pytest.raises(SessionDataTooLarge):
        h.m.update(h.m.load(user.token), set={"big": "x" * LIMIT})
    check("refused update")
    others = [h.m.login(None, "ttl-user") for _ in range(3)]
    h.m.revoke_id("ttl-user", others[0].id)
    check("revoke_id")
    h.m.revoke_user("ttl-user", except_id=others[1].id)
    marked.add("ttl-user")
    check("revoke_user")
    h.m.revoke(others[1])
    check("revoke")
    h.m.create(user_id="blocked-user")
    h.m.set_user_blocked("blocked-user", True)
    marked.add("blocked-user")
    check("block")
    h.m.set_user_blocked("blocked-user", False)
    check("unblock")
    h.store.kv_set("lock", "me", now=h.clock.now(), ttl=30)
    h.store.kv_set("lock", "you", now=h.clock.now(), ttl=30, only_if_absent=True)
    check("kv_set")
    h.clock.advance(3 * HOUR)
    h.m.purge()
    check("purge")
    assert h.backend.all_keys()  # type: ignore[attr-defined]


# -- concurrency ----------------------------------------------------------------------------------
def test_k1_logout_racing_a_request_does_not_resurrect(h: Harness) -> None:
    s = h.m.create(user_id="bob", data={"a": 1})
    request = h.m.load(s.token)
    h.m.revoke(s.token)  # a parallel request logs out
    request["a"] = 2
    with pytest.raises(SessionGone):
        h.m.save(request)
    with pytest.raises(SessionGone):
        h.m.set_expiry(request, 60)
    with pytest.raises(SessionGone):
        h.m.rotate(request)
    with pytest.raises(SessionRevoked):
        h.m.load(s.token)
    assert h.m.list_user("bob") == []
    stored = h.store.get(s.record.key)
    assert stored.revoked_at is not None
    assert stored.data == {}
    # and truly in parallel: whichever lands first, the session ends revoked with no data
    victims = [h.m.create(user_id="bob", data={"a": 1}) for _ in range(10)]
    loaded = [h.m.load(v.token) for v in victims]
    jobs = []
    for v, request in zip(victims, loaded, strict=True):
        jobs += [lambda v=v: h.m.revoke(v.token), lambda r=request: h.m.update(r, set={"b": 2})]
    results = h.parallel(jobs)
    assert [r for r in results if isinstance(r, Exception) and not isinstance(r, SessionGone)] == []
    for v in victims:
        with pytest.raises(SessionRevoked):
            h.m.load(v.token)
        assert h.store.get(v.record.key).data == {}


def test_k2_parallel_writers_of_different_keys_all_survive(h: Harness) -> None:
    s = h.m.create(data={"keep": "me"})

    def writer(i: int) -> object:
        session = h.m.load(s.token, touch=False)
        session[f"k{i}"] = i
        return h.m.save(session)

    results = h.parallel([lambda i=i: writer(i) for i in range(16)])
    assert [r for r in results if isinstance(r, Exception)] == []
    assert dict(h.m.load(s.token)) == {"keep": "me", **{f"k{i}": i for i in range(16)}}


def test_k2_concurrent_incr_loses_no_counts(h: Harness) -> None:
    s = h.m.create()

    def bump() -> None:
        for _ in range(10):
            h.m.update(h.m.load(s.token, touch=False), incr={"n": 1, "m": -2})

    results = h.parallel([bump] * 8)
    assert [r for r in results if isinstance(r, Exception)] == []
    assert dict(h.m.load(s.token)) == {"n": 80, "m": -160}


@pytest.mark.parametrize("to_user", [pytest.param(False, id="same-user"), pytest.param(True, id="login")])
def test_k3_concurrent_rotations_exactly_one_wins(h: Harness, to_user: bool) -> None:
    owner = None if to_user else "carol"
    s = h.m.create(user_id=owner, data={"cart": [1]})
    copies = [h.m.load(s.token) for _ in range(8)]
    kwargs = {"user_id": "carol"} if to_user else {}
    results = h.parallel([lambda c=c: h.m.rotate(c, **kwargs) for c in copies])
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 1, results
    assert all(isinstance(r, SessionGone) for r in results if isinstance(r, Exception))
    assert dict(h.m.load(winners[0].token)) == {"cart": [1]}
    with pytest.raises(SessionRevoked):
        h.m.load(s.token)
    assert [x.id for x in h.m.list_user("carol")] == [winners[0].id]


def test_k4_200_parallel_logins_give_distinct_valid_tokens(h: Harness) -> None:
    results = h.parallel([lambda i=i: h.m.login(None, f"user{i % 10}") for i in range(200)], workers=32)
    assert [r for r in results if isinstance(r, Exception)] == []
    assert len({r.token for r in results}) == 200
    for r in results:
        assert h.m.load(r.token, touch=False).user_id == r.user_id
    assert h.m.count() == 200
    assert sum(len(h.m.list_user(f"user{i}")) for i in range(10)) == 200


def test_k7_purge_racing_touch(h: Harness) -> None:
    doomed = [h.m.create(client="browser") for _ in range(10)]
    h.clock.advance(10 * MINUTE)
    racing = [h.m.create(client="browser") for _ in range(30)]
    h.clock.advance(28 * MINUTE)  # doomed: expired; racing: 2 minutes left
    sweeper = h.manager(clock=FakeClock(h.clock.now() + 5 * MINUTE))  # a sweeper 5 minutes ahead
    jobs = [lambda s=s: h.m.load(s.token) for s in racing + doomed]
    jobs += [lambda: sweeper.purge(batch_size=3)] * 4
    results = h.parallel(jobs)
    for s, r in zip(racing, results, strict=False):
        if isinstance(r, Exception):
            assert isinstance(r, SessionInvalid), r  # purged first: gone, and never served
        else:  # refreshed during the purge: it must survive it
            assert r.record.last_seen_at == h.clock.now()
            assert h.m.load(s.token, touch=False).id == s.id
    for r in results[len(racing) : len(racing) + len(doomed)]:
        assert isinstance(r, SessionExpired | SessionUnknown), r  # expired at read: never served
    sweeper.purge()
    assert h.m.count() == sum(not isinstance(r, Exception) for r in results[: len(racing)])


def test_sweeper_lock_has_exactly_one_holder(h: Harness) -> None:
    """The background sweep runs in one process at a time: whoever sets the key first."""
    contenders = [Facade(h.manager().raw.store, h.run) for _ in range(2)] * 3
    for round_ in range(15):
        results = h.parallel(
            [
                lambda c=c, i=i: c.kv_set(
                    f"sweeper:{round_}", f"p{i}", now=h.clock.now(), ttl=60, only_if_absent=True
                )
                for i, c in enumerate(contenders)
            ],
            workers=len(contenders),
        )
        assert sorted(results) == [False] * 5 + [True], results
        holder = f"p{results.index(True)}"
        assert contenders[0].kv_get(f"sweeper:{round_}", now=h.clock.now()) == holder


# -- security -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_s1_a_million_tokens_no_duplicates() -> None:
    tokens = {new_token(None) for _ in range(1_000_000)}
    assert len(tokens) == 1_000_000
    assert {len(t) for t in tokens} == {47}


def test_s2_a_never_issued_token_creates_nothing(h: Harness) -> None:
    forged = [new_token(None), new_token("alice")]
    for token in forged:
        with pytest.raises(SessionUnknown):
            h.m.load(token)
        assert h.m.revoke(token) is False
    assert set(h.spy.writes) <= {"revoke"}
    assert h.backend.sessions() == 0
    assert h.m.list_user("alice") == []


def test_s5_the_store_never_holds_a_token(h: Harness) -> None:
    a = h.m.create(user_id="erin", data={"k": "v"}, ip="10.0.0.1", user_agent="UA")
    b = h.m.rotate(h.m.load(a.token))
    c = h.m.create(data={"cart": 1})
    d = h.m.login(h.m.load(c.token), "erin")
    e = h.m.create(user_id="erin")
    h.m.revoke(e.token)
    h.store.kv_set("k", "v", now=h.clock.now(), ttl=60)
    stored = "\n".join(h.backend.strings())
    assert stored
    for s in (a, b, c, d, e):
        assert s.token not in stored
        assert s.token[4:] not in stored  # not even the secret part
    for s in (b, d):
        key = s.record.key
        for copied in (key, key[5:], key[:4] + key[5:48], key.replace(".", "")[:47]):
            with pytest.raises(SessionUnknown):
                h.m.load(copied)


@pytest.mark.parametrize("kind", PERSISTENT)
@pytest.mark.parametrize("how", ["json", "shape"])
def test_s8_a_corrupt_record_serves_no_session(
    h: Harness, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Chosen behaviour: a record that cannot be decoded is treated as absent (401
    not_authenticated: the client logs in again), logged on `huihua.security`; nothing crashes,
    and other sessions are untouched."""
    victim = h.m.create(data={"a": 1})
    other = h.m.create(data={"b": 2})
    h.backend.corrupt(victim.record.key, how)
    with caplog.at_level("ERROR", logger="huihua.security"), pytest.raises(SessionUnknown):
        h.m.load(victim.token)
    assert "corrupt session record" in caplog.text
    assert h.m.get(victim.token) is None
    victim["c"] = 3
    with pytest.raises(SessionGone):
        h.m.save(victim)
    assert dict(h.m.load(other.token)) == {"b": 2}
    h.m.update(h.m.load(other.token), incr={"n": 1})
    assert h.m.load(other.token)["n"] == 1


WEIRD_USERS = ["a}b{c", "{x}", "*", "user:1", "hh:s:*", "line\nbreak\r\n", "", "' OR '1'='1",
               "ユーザー", "u" * 300, "a b", "%00"]  # fmt: skip


def test_s9_user_input_cannot_address_other_keys(h: Harness) -> None:
    victim = h.m.create(user_id="victim", data={"secret": 1})
    sessions = {u: h.m.create(user_id=u) for u in WEIRD_USERS}
    for user, s in sessions.items():
        assert [x.id for x in h.m.list_user(user)] == [s.id]
        assert h.m.load(s.token).user_id == user
    for user in WEIRD_USERS:
        assert h.m.revoke_user(user) == 1
        assert h.m.revoke_id(user, victim.id) is False
    assert [x.id for x in h.m.list_user("victim")] == [victim.id]
    assert dict(h.m.load(victim.token)) == {"secret": 1}
    now = h.clock.now()
    names = ["a", "a}b", "{a}", "*", "hh:s:*", "a\nb", ""]
    for i, name in enumerate(names):
        assert h.store.kv_set(name, str(i), now=now, ttl=60)
    assert h.store.kv_delete("*")
    assert [h.store.kv_get(n, now=now) for n in names] == ["0", "1", "2", None, "4", "5", "6"]
    if h.kind in REDIS_KINDS:
        assert all(k.startswith("hh:") for k in h.backend.all_keys())  # type: ignore[attr-defined]


MALFORMED = [
    "", "a", "a" * 7, "a" * 8, "a" * 46, "a" * 48, "a" * 46 + "+", "a" * 46 + "/", "a" * 46 + "=",
    "a" * 23 + " " + "a" * 23, '"' + "a" * 45 + '"', "'" + "a" * 46, "%00" + "a" * 44,
    "\x00" * 47, "a" * 46 + "\x00", "a" * 10240, ("../" * 16)[:47], "/" * 47, "\\" * 47, ":" * 47,
    "a" * 46 + ".", "' OR 1=1 --".ljust(47, "a"), "*\r\nFLUSHALL\r\n".ljust(47, "a"),
    "{tag}".ljust(47, "a"), "ä" * 47, "a" * 46 + "\n", "a" * 46 + "é", " " + "a" * 46,
]  # fmt: skip


def test_b1_b2_b3_malformed_tokens_never_reach_the_store(h: Harness) -> None:
    for token in [*MALFORMED, None, b"a" * 47, 47, ["a" * 47]]:
        with pytest.raises(SessionUnknown):
            h.m.load(token)
        with pytest.raises(SessionUnknown):
            h.m.revoke(token)
        if isinstance(token, str | None):
            assert h.m.get(token) is None
    assert h.spy.calls == []
    assert h.backend.sessions() == 0


def _at_limit(data: dict[str, object], key: str, prefix: str) -> dict[str, object]:
    """`data` plus `key`, a string starting with `prefix` padded so the total is exactly LIMIT."""
    probe = {**data, key: prefix}
    return {**data, key: prefix + "z" * (LIMIT - data_size(probe))}


def test_b6_oversized_data_is_refused_with_nothing_written(h: Harness) -> None:
    s = h.m.create(user_id="big", data={"a": "x"})
    with pytest.raises(SessionDataTooLarge):
        h.m.create(data={"big": "x" * LIMIT})
    assert h.backend.sessions() == 1
    before = h.store.get(s.record.key)
    loaded = h.m.load(s.token, touch=False)
    loaded["big"] = "x" * LIMIT
    with pytest.raises(SessionDataTooLarge) as info:
        h.m.save(loaded)
    assert info.value.size > LIMIT
    after = h.store.get(s.record.key)
    assert (after.data, after.version) == (before.data, before.version)
    # exactly at the limit, with escapes and multi-byte text: round-trips exactly
    full = _at_limit({"a": "x", "n": 9}, "big", 'é☃😀\n\t"\\/<>&\u2028\x00')
    assert data_size(full) == LIMIT
    h.m.update(h.m.load(s.token, touch=False), set={k: v for k, v in full.items() if k != "a"})
    assert dict(h.m.load(s.token)) == full
    before = h.store.get(s.record.key)
    # an increment that adds a digit would pass the limit: refused, the counter unchanged
    with pytest.raises(SessionDataTooLarge):
        h.m.update(h.m.load(s.token, touch=False), incr={"n": 1})
    after = h.store.get(s.record.key)
    assert (after.data, after.version) == (before.data, before.version)
    h.m.update(h.m.load(s.token, touch=False), incr={"n": -1})  # shrinking is fine
    assert h.m.load(s.token)["n"] == 8
    # a rotation whose merged data is too large leaves the old session as it was
    for owner in ("big", None):
        token = new_token(owner)
        new = SessionRecord(key=session_key(token), id=new_session_id(), user_id=owner,
                            client="browser", created_at=h.clock.now(), timing=after.timing,
                            data={"more": "y" * 10})  # fmt: skip
        with pytest.raises(SessionDataTooLarge):
            h.store.rotate(s.record.key, new, h.clock.now(), keep_data=True, max_bytes=LIMIT)
        assert h.store.get(new.key) is None
        assert h.m.load(s.token, touch=False)["n"] == 8


ODD = {
    "__proto__": {"polluted": True}, "constructor": 1, "__class__": "x", "__dict__": [],
    "cookie": "c", "": "empty", "キー": "値", "😀": "emoji", "a.b": 1, "$where": "1",
    "a\x00b": "nul\x00", "\n": "newline", "k" * 300: None, "__init__": {"__proto__": None},
    "hasOwnProperty": False, "-1": -1, "1e3": 1.5,
}  # fmt: skip


def test_b9_odd_keys_round_trip_and_non_strings_are_refused(h: Harness) -> None:
    s = h.m.create(data=ODD)
    assert dict(h.m.load(s.token)) == ODD
    h.m.update(h.m.load(s.token), set={"constructor": 2}, unset=[""], incr={"__proto__n": 3})
    expected = {**ODD, "constructor": 2, "__proto__n": 3}
    del expected[""]
    assert dict(h.m.load(s.token)) == expected
    for bad in (1, None, ("t",), 1.5, b"bytes", "\ud800"):
        with pytest.raises(SessionDataError):
            h.m.create(data={bad: 1})
        session = h.m.load(s.token)
        session[bad] = 1  # type: ignore[index]
        with pytest.raises(SessionDataError):
            h.m.save(session)
    with pytest.raises(SessionDataError):
        h.m.update(h.m.load(s.token), set={"v": "\udfff"})
    with pytest.raises(NotAnInteger):
        h.m.update(h.m.load(s.token), incr={"constructor": 1, "cookie": 1})
    assert dict(h.m.load(s.token)) == expected  # nothing of the refused changes landed
    assert h.backend.sessions() == 1


# -- the per-user index, revocation and rotation --------------------------------------------------
def test_user_index_lists_and_revokes_with_device_metadata(h: Harness) -> None:
    phone = h.m.login(None, "u1", client="miniprogram", ip="1.1.1.1", user_agent="WeChat/8.0")
    h.clock.advance(10)
    laptop = h.m.login(None, "u1", client="browser", ip="2.2.2.2", user_agent="Firefox")
    h.clock.advance(10)
    tablet = h.m.login(None, "u1", client="browser", ip="3.3.3.3", user_agent="Safari")
    stranger = h.m.login(None, "u2")
    h.clock.advance(2 * MINUTE)
    h.m.load(phone.token)  # activity shows in the list
    listed = h.m.list_user("u1")
    assert [(x.id, x.client, x.record.ip, x.record.user_agent) for x in listed] == [
        (phone.id, "miniprogram", "1.1.1.1", "WeChat/8.0"),
        (laptop.id, "browser", "2.2.2.2", "Firefox"),
        (tablet.id, "browser", "3.3.3.3", "Safari"),
    ]
    assert listed[0].created_at < listed[1].created_at < listed[2].created_at
    assert listed[0].record.last_seen_at == h.clock.now()
    assert h.m.revoke_id("u2", laptop.id) is False  # not theirs
    assert h.m.revoke_id("u1", laptop.id) is True
    assert h.m.revoke_id("u1", laptop.id) is False  # once
    assert [x.id for x in h.m.list_user("u1")] == [phone.id, tablet.id]
    assert h.m.revoke_user("u1", except_id=tablet.id) == 1  # all but the current
    with pytest.raises(SessionRevoked):
        h.m.load(phone.token)
    assert h.m.load(tablet.token).id == tablet.id
    assert h.m.revoke_user("u1") == 1
    assert h.m.revoke_user("u1") == 0
    assert h.m.list_user("u1") == []
    for s in (laptop, tablet):
        with pytest.raises(SessionRevoked):
            h.m.load(s.token)
    assert [x.id for x in h.m.list_user("u2")] == [stranger.id]


def test_no_resurrection_after_revoke(h: Harness) -> None:
    s = h.m.create(user_id="zoe", data={"a": 1})
    loaded = h.m.load(s.token)
    assert h.m.revoke(s) is True
    assert h.m.revoke(s) is False
    loaded["a"] = 2
    for attempt in (lambda: h.m.save(loaded), lambda: h.m.set_expiry(loaded, None),
                    lambda: h.m.rotate(loaded), lambda: h.m.update(loaded, incr={"n": 1})):  # fmt: skip
        with pytest.raises(SessionGone):
            attempt()
    h.clock.advance(2 * MINUTE)
    with pytest.raises(SessionRevoked):
        h.m.load(s.token)  # and no touch revives it
    assert h.store.get(s.record.key).data == {}
    assert h.m.list_user("zoe") == []


def test_rotation_carries_data_and_kills_the_old_token(h: Harness) -> None:
    anon = h.m.create(data={"cart": ["apple"]}, ip="9.9.9.9")
    user = h.m.login(h.m.load(anon.token), "frank")
    assert user.token != anon.token and user.id != anon.id
    assert dict(h.m.load(user.token)) == {"cart": ["apple"]}
    assert user.record.ip == "9.9.9.9"
    with pytest.raises(SessionRevoked):
        h.m.load(anon.token)
    h.clock.advance(5 * MINUTE)
    same = h.m.rotate(h.m.load(user.token))  # privilege change: same user, deadlines kept
    assert same.created_at == user.created_at
    assert same.record.timing.absolute_expires_at == user.record.timing.absolute_expires_at
    assert dict(h.m.load(same.token)) == {"cart": ["apple"]}
    with pytest.raises(SessionRevoked):
        h.m.load(user.token)
    fresh = h.m.rotate(h.m.load(same.token), keep_data=False)
    assert dict(h.m.load(fresh.token)) == {}
    other = h.m.login(h.m.load(fresh.token), "grace")  # another user: never inherited
    assert other.user_id == "grace" and dict(h.m.load(other.token)) == {}
    with pytest.raises(SessionRevoked):
        h.m.load(fresh.token)
    assert h.m.list_user("frank") == []
    assert [x.id for x in h.m.list_user("grace")] == [other.id]


def test_set_expiry(h: Harness) -> None:
    s = h.m.create(client="browser")
    h.m.set_expiry(h.m.load(s.token), 0)  # at browser close
    assert not h.m.load(s.token).persistent
    h.m.set_expiry(h.m.load(s.token), 7 * 24 * HOUR)  # longer than the absolute default
    h.clock.advance(3 * 24 * HOUR)
    assert h.m.load(s.token).persistent
    h.m.set_expiry(h.m.load(s.token), 60)
    h.clock.advance(59)
    h.m.load(s.token, touch=False)
    h.clock.advance(2)
    with pytest.raises(SessionExpired):
        h.m.load(s.token)


def test_kv_set_get_delete(h: Harness) -> None:
    now = h.clock.now
    assert h.store.kv_get("k", now=now()) is None
    assert h.store.kv_set("k", "v1", now=now(), ttl=60)
    assert h.store.kv_get("k", now=now()) == "v1"
    assert not h.store.kv_set("k", "v2", now=now(), ttl=60, only_if_absent=True)
    assert h.store.kv_get("k", now=now()) == "v1"
    assert h.store.kv_set("k", "v2", now=now(), ttl=60)
    assert h.store.kv_get("k", now=now()) == "v2"
    assert not h.store.kv_delete("k", if_value="v1")
    assert h.store.kv_get("k", now=now()) == "v2"
    assert h.store.kv_delete("k", if_value="v2")
    assert h.store.kv_get("k", now=now()) is None
    assert not h.store.kv_delete("k")
    assert h.store.kv_set("t", "x" * 5000, now=now(), ttl=30)
    h.clock.advance(29)
    assert h.store.kv_get("t", now=now()) == "x" * 5000
    h.clock.advance(2)
    assert h.store.kv_get("t", now=now()) is None
    assert h.store.kv_set("t", "y", now=now(), ttl=30, only_if_absent=True)  # the holder expired
    assert h.store.kv_get("t", now=now()) == "y"


# -- store failures -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_an_unreachable_store_is_unavailable_not_no_session(kind: str, flavour: str) -> None:
    from huihua.core.async_manager import AsyncSessionManager
    from huihua.core.manager import SessionManager

    if kind == "redis":
        from huihua.stores.redis import AsyncRedisStore, RedisStore

        cls = AsyncRedisStore if flavour == "async" else RedisStore
        store = cls.from_url("redis://127.0.0.1:1/0")
    else:
        from huihua.stores.postgres import AsyncPostgresStore, PostgresStore

        pg = AsyncPostgresStore if flavour == "async" else PostgresStore
        store = pg.from_url("postgresql://postgres@127.0.0.1:1/huihua_test", timeout=0.5)
    run = Runner(flavour)
    try:
        manager = Facade(
            (AsyncSessionManager if flavour == "async" else SessionManager)(store, events=()), run
        )
        for attempt in (lambda: manager.load(new_token(None)), lambda: manager.get(new_token(None)),
                        manager.create, lambda: manager.list_user("u"),
                        lambda: Facade(store, run).ping()):  # fmt: skip
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                attempt()
            assert time.monotonic() - started < 3
    finally:
        run(store.close())
        run.close()


@only("redis", "redis-sentinel", "postgres")
def test_connections_recover_by_themselves(h: Harness) -> None:
    """Every pooled connection is killed server-side; the store recovers without a restart (a
    request that was using a dead connection may get StoreUnavailable, never a wrong answer)."""
    name = f"huihua-recover-{uuid.uuid4().hex[:8]}"
    option = "client_name" if h.kind != "postgres" else "application_name"
    m = h.manager(h.new_raw_store(**{option: name}))
    s = m.create(data={"a": 1})
    results = h.parallel([lambda: m.load(s.token, touch=False)] * 8)  # fill the pool
    assert not [r for r in results if isinstance(r, Exception)]
    if h.kind != "postgres":
        r = h.backend.r  # type: ignore[attr-defined]
        killed = [r.client_kill_filter(_id=c["id"]) for c in r.client_list() if c["name"] == name]
    else:
        killed = h.backend.db.execute(  # type: ignore[attr-defined]
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (name,),
        ).fetchall()
    assert killed
    answers = []
    for _ in range(12):
        try:
            answers.append(dict(m.load(s.token, touch=False)))
        except StoreUnavailable:
            answers.append(None)
    assert answers[-1] == {"a": 1}
    assert all(a in (None, {"a": 1}) for a in answers)


@only("redis", "redis-sentinel", "postgres")
def test_k8_a_saturated_pool_answers_unavailable_fast(h: Harness) -> None:
    redis_kind = h.kind != "postgres"
    store = h.new_raw_store(**({"max_connections": 1, "pool_timeout": 0.3} if redis_kind
                               else {"max_size": 1, "timeout": 0.3}))  # fmt: skip
    m = h.manager(store)
    s = m.create()
    pool = store.client.connection_pool if redis_kind else store.pool
    held = h.wait(pool.get_connection() if redis_kind else pool.getconn())
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            m.load(s.token)
        assert time.monotonic() - started < 2
    finally:
        h.wait(pool.release(held) if redis_kind else pool.putconn(held))
    assert m.load(s.token).id == s.id  # and it serves again once a connection is free


# -- the per-user mark: revocation that does not depend on the index (issue 9 items 3, 7) --------
def _dead(h: Harness, session: Session) -> None:
    """Nothing can use or revive `session`: loads say revoked, every write is refused."""
    with pytest.raises(SessionRevoked):
        h.m.load(session.token)
    h.clock.advance(2 * MINUTE)  # a touch is due: it must not write either
    with pytest.raises(SessionRevoked):
        h.m.load(session.token)
    for attempt in (lambda: h.m.update(session, set={"x": 1}), lambda: h.m.set_expiry(session, 600),
                    lambda: h.m.rotate(session), lambda: h.m.rotate(session, user_id=None)):  # fmt: skip
        with pytest.raises(SessionGone):
            attempt()
    timing = h.m.raw.policy.touched(session.record.timing, h.clock.now())
    assert h.store.update(session.record.key, h.clock.now(), timing=timing, max_bytes=LIMIT) is None
    assert h.m.revoke(session.token) is False
    assert h.store.get(session.record.key).data == {}


def test_revoke_user_kills_sessions_the_index_lost(h: Harness) -> None:
    victims = [h.m.login(None, "owner", ip=f"10.0.0.{i}") for i in range(3)]
    anonymous = h.m.create(data={"cart": 1})
    for v in victims:
        h.m.update(h.m.load(v.token), set={"secret": v.id})
    h.backend.lose_index("owner")  # Redis: evicted; the sessions themselves are still there
    h.m.revoke_user("owner", reason="password_changed")
    h.backend.undo_tombstones("owner")  # whatever the revocation itself missed
    for v in victims:
        _dead(h, v)
    assert h.m.list_user("owner") == []
    assert h.m.count() == 1  # only the visitor
    assert dict(h.m.load(anonymous.token)) == {"cart": 1}  # anonymous sessions have no mark
    fresh = h.m.login(None, "owner")  # a new login after the revocation is live
    assert h.m.load(fresh.token).user_id == "owner"
    assert [x.id for x in h.m.list_user("owner")] == [fresh.id]


def test_revoke_user_keeps_the_current_session(h: Harness) -> None:
    others = [h.m.login(None, "keeper") for _ in range(3)]
    current = h.m.login(None, "keeper")
    assert h.m.revoke_user("keeper", except_id=current.id) == 3
    h.backend.undo_tombstones("keeper")
    for s in others:
        _dead(h, s)
    kept = h.m.load(current.token)
    h.m.update(kept, set={"still": "here"})
    rotated = h.m.rotate(h.m.load(current.token))  # e.g. the password change rotates it next
    assert dict(h.m.load(rotated.token)) == {"still": "here"}
    assert [x.id for x in h.m.list_user("keeper")] == [rotated.id]
    assert h.m.revoke_user("keeper", except_id=rotated.id) == 0  # twice in a row: still kept
    assert h.m.load(rotated.token).id == rotated.id
    assert h.m.revoke_user("keeper") == 1
    with pytest.raises(SessionRevoked):
        h.m.load(rotated.token)


def test_a_blocked_user_has_no_usable_session(h: Harness) -> None:
    before = [h.m.login(None, "blocked"), h.m.login(h.m.create(data={"cart": 1}), "blocked")]
    other = h.m.login(None, "bystander")
    assert h.m.set_user_blocked("blocked", True) == 2
    for s in before:
        _dead(h, s)
    during = h.m.login(None, "blocked")  # e.g. a login racing the disable
    during_rotated = h.m.login(h.m.create(), "blocked")
    for s in (during, during_rotated):
        _dead(h, s)
    assert h.m.list_user("blocked") == []
    assert h.m.set_user_blocked("blocked", True) == 0  # blocking again: nothing live to end
    assert h.m.revoke_user("blocked") == 0  # and a revoke-all does not unblock
    dead_again = h.m.login(None, "blocked")
    assert h.m.set_user_blocked("blocked", False) == 0
    for s in (*before, during, during_rotated, dead_again):  # unblocking revives none
        with pytest.raises(SessionRevoked):
            h.m.load(s.token)
    after = h.m.login(None, "blocked")
    assert h.m.load(after.token).user_id == "blocked"
    assert [x.id for x in h.m.list_user("blocked")] == [after.id]
    assert h.m.load(other.token).user_id == "bystander"


def test_parallel_logins_racing_revoke_all_are_stamped_consistently(h: Harness) -> None:
    """A session whose creation finished before a revoke-all began is dead, whatever the index
    saw; the live ones are exactly the ones listed."""
    ticks: dict[int, tuple[float, float]] = {}

    def timed(i: int, fn: Callable[[], Any]) -> Any:
        start = time.monotonic()
        try:
            return fn()
        finally:
            ticks[i] = (start, time.monotonic())

    jobs: list[Callable[[], Any]] = []
    for i in range(40):
        fn: Callable[[], Any] = (lambda: h.m.revoke_user("racer")) if i % 8 == 7 else (
            lambda: h.m.login(None, "racer"))  # fmt: skip
        jobs.append(lambda i=i, fn=fn: timed(i, fn))
    results = h.parallel(jobs)
    assert [r for r in results if isinstance(r, Exception)] == []
    last_revoke = max(ticks[i][0] for i in range(40) if i % 8 == 7)
    live = set()
    for i, r in enumerate(results):
        if i % 8 == 7:
            continue
        try:
            h.m.load(r.token, touch=False)
            live.add(r.id)
        except SessionRevoked:
            continue
        assert ticks[i][1] > last_revoke, "a session created before a revoke-all survived it"
    assert {x.id for x in h.m.list_user("racer")} == live
    h.m.revoke_user("racer")
    for i, r in enumerate(results):
        if i % 8 != 7:
            with pytest.raises(SessionRevoked):
                h.m.load(r.token)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_database_made_before_marks_gets_them_on_open(h: Harness) -> None:
    s = h.m.login(None, "old-timer")
    db = h.backend.db  # type: ignore[attr-defined]
    db.execute("DROP TABLE huihua_user_mark")
    db.execute("ALTER TABLE huihua_session DROP COLUMN epoch")
    m = h.manager(h.new_raw_store())  # opening migrates: the table and the column come back
    assert m.load(s.token).user_id == "old-timer"  # an old session counts as epoch 0
    keep = m.login(None, "old-timer")
    assert m.revoke_user("old-timer", except_id=keep.id) == 1
    with pytest.raises(SessionRevoked):
        m.load(s.token)
    assert m.load(keep.token).id == keep.id


# -- the per-user cap (issue 9 item 6) -------------------------------------------------------------
def test_a_session_beyond_the_cap_ends_the_least_recently_used(h: Harness) -> None:
    seen: list[SessionEvent] = []
    m = h.manager(max_sessions_per_user=3, events=[seen.append])
    logins = []
    for i in range(3):
        h.clock.advance(1)  # distinct activity times: "least recently used" is one session
        logins.append(m.login(None, "capped", ip=f"10.0.0.{i}"))
    first, second, third = logins
    h.clock.advance(2 * MINUTE)
    m.load(first.token)  # activity: now the second is the least recently used
    h.clock.advance(1)
    fourth = m.login(None, "capped")
    with pytest.raises(SessionRevoked):
        m.load(second.token)
    assert {x.id for x in m.list_user("capped")} == {first.id, third.id, fourth.id}
    limited = [e for e in seen if e.kind == "revoked" and (e.reason or "").startswith("session_limit")]
    assert [(e.user_id, e.reason) for e in limited] == [("capped", f"session_limit:{second.id}")]
    h.clock.advance(1)
    fifth = m.login(m.create(data={"cart": 1}), "capped")  # a rotation to the user counts too
    with pytest.raises(SessionRevoked):
        m.load(third.token)
    assert {x.id for x in m.list_user("capped")} == {first.id, fourth.id, fifth.id}
    h.clock.advance(1)
    same = m.rotate(m.load(fifth.token))  # the same user's rotation does not push anyone out
    assert {x.id for x in m.list_user("capped")} == {first.id, fourth.id, same.id}
    assert m.load(h.m.create(user_id="other").token).user_id == "other"  # per user


def test_parallel_creates_never_leave_more_than_the_cap(h: Harness) -> None:
    m = h.manager(max_sessions_per_user=3)
    results = h.parallel([lambda: m.login(None, "crowd")] * 16)
    assert [r for r in results if isinstance(r, Exception)] == []
    usable = [r for r in results if m.get(r.token, touch=False) is not None]
    assert len(usable) == 3
    assert {x.id for x in m.list_user("crowd")} == {r.id for r in usable}
