"""The Session mapping sends only what changed, nested changes included."""

from __future__ import annotations

from huihua.core.data import DataChanges
from huihua.core.record import SessionRecord, Timing
from huihua.core.session import Session


def _session(data: dict) -> Session:
    record = SessionRecord(key="k", id="i", user_id=None, client="browser", created_at=0.0,
                           timing=Timing(0.0, 60.0, 100.0), data=data)  # fmt: skip
    return Session(record)


def test_untouched_session_has_no_changes() -> None:
    s = _session({"cart": ["tea"], "n": 1, "profile": {"a": 1}})
    assert not s.modified
    assert s.changes() == DataChanges()


def test_nested_mutation_is_seen() -> None:
    s = _session({"cart": ["tea"], "profile": {"a": 1}})
    s["cart"].append("milk")
    s["profile"]["b"] = 2
    assert dict(s.changes().set) == {"cart": ["tea", "milk"], "profile": {"a": 1, "b": 2}}


def test_reading_without_changing_sends_nothing() -> None:
    s = _session({"cart": ["tea"], "n": 1})
    assert dict(s) == {"cart": ["tea"], "n": 1}
    assert s.get("cart") == ["tea"]
    assert not s.modified


def test_setting_an_equal_value_sends_nothing_and_a_new_one_sends_it() -> None:
    s = _session({"cart": ["tea"], "n": 1})
    s["cart"] = ["tea"]
    s["n"] = 1
    assert not s.modified
    s["n"] = 2
    s["new"] = None
    assert dict(s.changes().set) == {"n": 2, "new": None}


def test_replacing_a_value_that_was_mutated_compares_with_the_stored_text() -> None:
    s = _session({"cart": ["tea"]})
    s["cart"].append("milk")
    s["cart"] = ["tea"]  # back to what is stored
    assert not s.modified


def test_deletes_clear_and_incr() -> None:
    s = _session({"a": 1, "b": 2})
    del s["a"]
    s.incr("c", 3)
    assert s.changes() == DataChanges(unset=frozenset({"a"}), incr={"c": 3})
    s.clear()
    assert s.changes().clear
