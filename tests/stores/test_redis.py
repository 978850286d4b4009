"""What only the Redis store promises: round trips, hash slots, scripts that refuse cleanly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from huihua.core.clock import FakeClock
from huihua.core.errors import NotAnInteger, SessionDataError
from huihua.core.manager import SessionManager
from huihua.core.policy import MINUTE
from huihua.stores.redis import Batch, RedisBase, RedisStore, Scan


class CountingConnection(redis.Connection):
    """Counts the writes to the socket: one per command, one per pipeline."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        super().send_packed_command(command, check_health)


@pytest.fixture
def counted(redis_url: str, clock: FakeClock) -> Iterator[SessionManager]:
    pool = redis.BlockingConnectionPool.from_url(redis_url, connection_class=CountingConnection)
    store = RedisStore(redis.Redis(connection_pool=pool))
    yield SessionManager(store, clock=clock, events=())
    store.close()


def trips(fn: Any) -> int:
    CountingConnection.sent = 0
    fn()
    return CountingConnection.sent


def test_a_load_is_one_round_trip(counted: SessionManager, clock: FakeClock) -> None:
    s = counted.create(user_id="rt", data={"a": 1})
    counted.load(s.token)  # the first call of each script loads it once (NOSCRIPT)
    counted.update(counted.load(s.token), set={"b": 1})
    assert trips(lambda: counted.load(s.token)) == 1
    clock.advance(120)
    assert trips(lambda: counted.load(s.token)) == 2  # get + the touch
    loaded = counted.load(s.token)
    assert trips(lambda: counted.update(loaded, incr={"n": 1})) == 1
    assert trips(lambda: counted.create(data={"x": 1})) <= 2


def test_a_users_keys_share_one_hash_slot(redis_url: str, clock: FakeClock) -> None:
    store = RedisStore.from_url(redis_url)
    try:
        m = SessionManager(store, clock=clock, events=())
        sessions = [m.create(user_id="slot-user", data={"i": i}) for i in range(5)]
        r = redis.Redis.from_url(redis_url)
        keys = [k.decode() for k in r.scan_iter(count=1000)]
        r.close()
        assert len(keys) == 11  # 5 meta + 5 data + 1 index
        assert len({key_slot(k.encode()) for k in keys}) == 1
        assert all(s.record.key[:4] in k for s in sessions for k in keys)
        assert {RedisBase.index_key("slot-user")} < set(keys)
        # user input cannot move a key to another slot or namespace
        for user in ("{evil}", "}{", "a{b}c"):
            index = RedisBase.index_key(user)
            assert index.startswith("hh:u:{") and key_slot(index.encode()) == key_slot(
                RedisBase.meta_key(m.login(None, user).record.key).encode()
            )
    finally:
        store.close()


def test_incr_refusals_leave_the_data_as_it_was(redis_url: str, clock: FakeClock) -> None:
    """Lua scripts are not transactional: a refused incr must restore what it touched."""
    store = RedisStore.from_url(redis_url)
    try:
        m = SessionManager(store, clock=clock, events=())
        s = m.create(data={"a": 1, "b": 2**63 - 1, "s": "text", "f": 1.5, "big": 10**30})
        before = store.get(s.record.key)
        for incr, error in (({"a": 1, "b": 1}, SessionDataError), ({"a": 1, "s": 1}, NotAnInteger),
                            ({"a": 1, "f": 1}, NotAnInteger), ({"a": 1, "big": -1}, SessionDataError),
                            ({"new": 5, "b": 1}, SessionDataError)):  # fmt: skip
            with pytest.raises(error):
                m.update(m.load(s.token, touch=False), incr=incr)
            after = store.get(s.record.key)
            assert after is not None and before is not None
            assert (after.data, after.version) == (before.data, before.version)
        m.update(m.load(s.token, touch=False), incr={"b": -(2**63 - 1), "a": -(2**63)})
        assert dict(m.load(s.token)) == {**before.data, "b": 0, "a": 1 - 2**63}  # type: ignore[union-attr]
    finally:
        store.close()


def test_purge_rechecks_each_session_when_it_deletes(redis_url: str, clock: FakeClock) -> None:
    """K7, deterministically: a session touched between purge's scan and its delete survives."""
    store = RedisStore.from_url(redis_url)
    try:
        m = SessionManager(store, clock=clock, events=())
        s = m.create(client="browser", data={"a": 1})
        clock.advance(29 * MINUTE)
        flow = store._purge(clock.now() + 5 * MINUTE, 100)  # a sweeper 5 minutes ahead
        scan = next(flow)
        assert isinstance(scan, Scan)
        fields = flow.send(store._step(scan))
        assert isinstance(fields, Batch)
        deletes = flow.send(store._step(fields))  # the session looked expired to the sweeper
        assert isinstance(deletes, Batch) and len(deletes.steps) == 1
        m.load(s.token)  # ... and a request refreshes it now
        with pytest.raises(StopIteration) as done:
            flow.send(store._step(deletes))
        assert done.value.value == 0
        assert dict(m.load(s.token)) == {"a": 1}
    finally:
        store.close()


def test_a_load_checks_the_mark_in_the_same_round_trip(counted: SessionManager, clock: FakeClock) -> None:
    """Issue 9 item 3: the mark is read inside the load script, not in a second trip."""
    others = [counted.login(None, "marked") for _ in range(2)]
    kept = counted.login(None, "marked")
    counted.revoke_user("marked", except_id=kept.id)
    counted.load(kept.token)
    assert trips(lambda: counted.load(kept.token)) == 1
    assert trips(lambda: counted.get(others[0].token)) == 1  # and says revoked in that one trip
    counted.set_user_blocked("marked", True)
    assert trips(lambda: counted.get(kept.token)) == 1
    assert counted.get(kept.token) is None
