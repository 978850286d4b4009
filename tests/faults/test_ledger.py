"""The ledger's own rules, fed by hand: each kind of violation is caught, and nothing else is;
and the load's recovery check (Load.check_recovery, run by Scenario.check) on made-up times."""

from __future__ import annotations

import time
from typing import Any

import pytest
from ledger import ABSENT, Ledger, State, Tracked
from load import Load


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


def session(ledger: Ledger, user: str = "u0", at: float = 1.0) -> Tracked:
    return ledger.logged_in(f"token-{user}-{at}", user, at)


def incr_acked(ledger: Ledger, s: Tracked, n: int, at: float = 2.0) -> None:
    ledger.check_data(s, {"n": n}, pending={"incr": 1}, at=at)


def test_acknowledged_increments_in_order_are_clean(ledger: Ledger) -> None:
    s = session(ledger)
    for n in (1, 2, 3):
        incr_acked(ledger, s, n)
    ledger.verify_final(s, 200, {"data": {"n": 3}})
    assert not ledger.violations
    assert ledger.acked_writes_checked() == 4  # the login and three increments


def test_an_acknowledged_increment_missing_afterwards_is_lost(ledger: Ledger) -> None:
    s = session(ledger)
    incr_acked(ledger, s, 1)
    incr_acked(ledger, s, 2)
    ledger.verify_final(s, 200, {"data": {"n": 1}})
    assert ledger.kinds() == {"lost": 1}


def test_an_unknown_increment_may_count_once_never_twice(ledger: Ledger) -> None:
    s = session(ledger)
    incr_acked(ledger, s, 1)
    ledger.unknown(s, {"incr": 1})
    for final, verdict in ((1, {}), (2, {}), (3, {"double_applied": 1})):
        probe = Ledger()
        t = probe.logged_in("t", "u", 1.0)
        t.base, t.unknown = s.base, s.unknown
        probe.verify_final(t, 200, {"data": {"n": final}})
        assert probe.kinds() == verdict, final


def test_an_answer_counting_an_increment_twice_is_caught_at_once(ledger: Ledger) -> None:
    s = session(ledger)
    incr_acked(ledger, s, 1)
    incr_acked(ledger, s, 3)  # the server says 3 after one more acknowledged increment, no unknown
    assert ledger.kinds() == {"double_applied": 1}


def test_an_unknown_set_allows_either_value_and_an_acknowledged_one_is_exact(ledger: Ledger) -> None:
    s = session(ledger)
    ledger.check_data(s, {"k0": 1}, pending={"set": ("k0", 1)}, at=2.0)
    ledger.unknown(s, {"set": ("k0", 2)})
    ledger.verify_final(s, 200, {"data": {"k0": 2}})
    ledger.verify_final(s, 200, {"data": {"k0": 1}})
    assert not ledger.violations
    ledger.verify_final(s, 200, {"data": {}})  # the acknowledged set vanished
    assert ledger.kinds() == {"lost": 1}


def test_an_acknowledged_unset_that_comes_back_is_lost(ledger: Ledger) -> None:
    s = session(ledger)
    ledger.check_data(s, {"k1": 5}, pending={"set": ("k1", 5)}, at=2.0)
    ledger.check_data(s, {}, pending={"unset": "k1"}, at=3.0)
    assert s.keys["k1"] == {ABSENT}
    ledger.verify_final(s, 200, {"data": {"k1": 5}})
    assert ledger.kinds() == {"lost": 1}


def test_a_revoked_session_that_works_again_is_resurrected(ledger: Ledger) -> None:
    s = session(ledger)
    ledger.revoked([s], 2.0, sure=True)
    ledger.verify_final(s, 401, {"error": {"code": "session_revoked"}})
    assert not ledger.violations
    ledger.verify_final(s, 200, {"data": {}})
    assert ledger.kinds() == {"resurrected": 1}


def test_a_session_seen_dead_must_stay_dead(ledger: Ledger) -> None:
    s = session(ledger)
    ledger.revoked([s], 2.0, sure=False)  # a logout whose answer was lost
    assert s.state is State.MAYBE_REVOKED
    ledger.unauthorized(s, "session_revoked", "fault")  # then a 401: it did apply
    assert not ledger.violations
    ledger.verify_final(s, 200, {"data": {}})
    assert ledger.kinds() == {"resurrected": 1}


def test_a_401_for_a_live_session_is_a_violation_and_a_lost_live_session_too(ledger: Ledger) -> None:
    s = session(ledger)
    ledger.unauthorized(s, "not_authenticated", "fault")
    t = session(ledger, "u1")
    ledger.verify_final(t, 401, {"error": {"code": "not_authenticated"}})
    assert ledger.kinds() == {"false_401": 1, "lost": 1}


def test_losses_inside_a_documented_window_are_allowed_and_counted(ledger: Ledger) -> None:
    ledger.loss_windows.append((10.0, 12.0))
    old = session(ledger, "u0", at=1.0)
    incr_acked(ledger, old, 1, at=5.0)
    incr_acked(ledger, old, 2, at=11.0)  # acknowledged inside the window
    ledger.verify_final(old, 200, {"data": {"n": 1}})
    young = session(ledger, "u1", at=11.5)  # its login inside the window
    ledger.verify_final(young, 401, {"error": {"code": "not_authenticated"}})
    assert not ledger.violations and len(ledger.allowed_losses) == 2
    ledger.verify_final(old, 200, {"data": {"n": 0}})  # the increment before the window is lost
    assert ledger.kinds() == {"lost": 1}


def test_a_window_for_some_users_allows_only_their_losses(ledger: Ledger) -> None:
    """A failed cluster shard: its users' last writes may be lost, nobody else's."""
    ledger.user_loss_windows.append((10.0, 12.0, frozenset({"u0"})))
    failed, up = session(ledger, "u0", at=1.0), session(ledger, "u1", at=1.0)
    for s in (failed, up):
        incr_acked(ledger, s, 1, at=11.0)
    ledger.verify_final(failed, 200, {"data": {"n": 0}})
    assert not ledger.violations and len(ledger.allowed_losses) == 1
    ledger.verify_final(up, 200, {"data": {"n": 0}})  # same time, a shard that stayed up: lost
    assert ledger.kinds() == {"lost": 1}


def test_a_500_is_always_a_violation(ledger: Ledger) -> None:
    ledger.count("before", 200)
    ledger.count("fault", 503)
    assert not ledger.violations
    ledger.count("after", 500)
    assert ledger.kinds() == {"status_500": 1} and ledger.requests == 3


def test_recovery_counts_only_requests_sent_after_the_fault(ledger: Ledger) -> None:
    s = session(ledger)
    ledger.sent_at = 9.0  # sent before the fault ended at 10, answered after it
    incr_acked(ledger, s, 1, at=10.5)
    assert ledger.first_ack_after(10.0) is None
    ledger.sent_at = 11.0
    incr_acked(ledger, s, 2, at=12.5)
    assert ledger.first_ack_after(10.0) == 2.5 and ledger.acks_sent_after(10.0) == 1


def write_acked(ledger: Ledger, s: Tracked, change: dict[str, Any], sent: float, at: float) -> None:
    """An acknowledged data change, sent at `sent` and answered at `at`."""
    ledger.sent_at = sent
    data: dict[str, Any] = {"n": s.base + (1 if "incr" in change else 0)}
    if "set" in change:
        k, v = change["set"]
        data[k] = v
    ledger.check_data(s, data, pending=change, at=at)


def test_write_acks_count_data_changes_only_by_kind(ledger: Ledger) -> None:
    ledger.sent_at = 11.0
    s = session(ledger, at=11.5)  # a login after the fault: acknowledged, but not a data write
    ledger.revoked([session(ledger, "u1", at=11.6)], 11.7, sure=True)  # nor a logout
    assert ledger.first_write_ack_after(10.0) is None and ledger.write_acks_sent_after(10.0) == {}
    write_acked(ledger, s, {"incr": 1}, sent=12.0, at=13.0)
    write_acked(ledger, s, {"set": ("k0", 5)}, sent=14.0, at=14.5)
    assert ledger.write_acks_sent_after(10.0) == {"incr": 1, "set": 1}
    assert ledger.first_write_ack_after(10.0) == 3.0
    assert ledger.first_write_ack_after(10.0, before=13.0) is None  # answered once the next fault began


def load_with_faults(*faults: tuple[float, float | None], within: float = 30.0) -> Load:
    load = Load("http://127.0.0.1:9", recovery_within=within)
    load.faults = list(faults)
    return load


def test_recovery_is_checked_after_every_fault() -> None:
    load = load_with_faults((10.0, 12.0), (20.0, 21.0))
    s = session(load.ledger, at=1.0)
    write_acked(load.ledger, s, {"incr": 1}, sent=12.5, at=13.0)
    write_acked(load.ledger, s, {"incr": 1}, sent=21.0, at=22.0)
    write_acked(load.ledger, s, {"set": ("k1", 3)}, sent=22.0, at=22.5)
    load.check_recovery()
    assert load.recovery_times() == [1.0, 1.0] and load.recovery_seconds == 1.0


def test_a_fault_without_an_acknowledged_write_after_it_fails_the_scenario() -> None:
    load = load_with_faults((10.0, 12.0), (20.0, 21.0))
    s = session(load.ledger, at=1.0)
    write_acked(load.ledger, s, {"incr": 1}, sent=19.0, at=20.5)  # answered after the next fault began
    write_acked(load.ledger, s, {"incr": 1}, sent=21.0, at=22.0)
    write_acked(load.ledger, s, {"set": ("k1", 3)}, sent=22.0, at=22.5)
    with pytest.raises(AssertionError, match="did not recover: fault 1 of 2: no write"):
        load.check_recovery()
    assert load.recovery_seconds is None


def test_a_recovery_slower_than_the_bound_fails_the_scenario() -> None:
    load = load_with_faults((10.0, 12.0), within=5.0)
    s = session(load.ledger, at=1.0)
    write_acked(load.ledger, s, {"incr": 1}, sent=12.0, at=18.0)
    write_acked(load.ledger, s, {"set": ("k0", 1)}, sent=18.0, at=18.1)
    with pytest.raises(AssertionError, match=r"after 6\.0 s \(bound 5 s\)"):
        load.check_recovery()


def test_after_the_last_fault_increments_and_sets_are_both_acknowledged() -> None:
    load = load_with_faults((10.0, 12.0))
    s = session(load.ledger, at=1.0)
    write_acked(load.ledger, s, {"incr": 1}, sent=12.0, at=12.5)
    write_acked(load.ledger, s, {"unset": "k0"}, sent=13.0, at=13.5)
    with pytest.raises(AssertionError, match="no set was acknowledged"):
        load.check_recovery()


def test_a_fault_never_ended_or_never_marked_fails_the_scenario() -> None:
    with pytest.raises(AssertionError, match="fault 1 of 1 never ended"):
        load_with_faults((10.0, None)).check_recovery()
    with pytest.raises(AssertionError, match="marks its fault"):
        load_with_faults().check_recovery()


def test_fault_and_recovered_mark_the_windows() -> None:
    load = Load("http://127.0.0.1:9")
    load.fault()
    load.recovered()
    load.fault()
    assert [end is not None for _, end in load.faults] == [True, False]
    load.recovered()
    (a, b), (c, d) = load.faults
    assert a <= b <= c <= d and load.recovered_at == d and load.phase == "after"


@pytest.mark.anyio
async def test_waiting_for_acks_after_recovery_fails_when_none_come() -> None:
    load = Load("http://127.0.0.1:9")
    load.fault()
    load.recovered()
    s = session(load.ledger, at=1.0)
    write_acked(load.ledger, s, {"incr": 1}, sent=load.recovered_at or 0.0, at=time.monotonic())
    with pytest.raises(AssertionError, match=r"no recovery: 0\.2 s after the fault ended, 1 of 20 writes"):
        await load.wait_acks_after_recovery(20, within=0.2)
