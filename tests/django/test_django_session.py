"""huihua's semantics behind request.session: what Django's own suite does not pin down."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.contrib.sessions.backends.base import UpdateError
from django.core import management
from django.utils import timezone

from huihua.contrib.django.session import SessionStore
from huihua.core.manager import SessionManager
from huihua.core.tokens import TOKEN_LENGTH, session_key


def _saved(**data: object) -> SessionStore:
    s = SessionStore()
    s.update(data)
    s.save()
    return s


def test_session_key_is_a_token_and_the_store_keeps_only_its_hash(
    manager: SessionManager, store_url: str
) -> None:
    s = _saved(cart=[1, 2])
    token = s.session_key
    assert token is not None and len(token) == TOKEN_LENGTH
    dump = b"".join(
        str(row).encode()
        for row in sqlite3.connect(store_url.removeprefix("sqlite:///")).execute(
            "SELECT * FROM huihua_session"
        )
    )
    assert token.encode() not in dump
    assert hashlib.sha256(token.encode()).hexdigest().encode() in dump
    assert manager.store.get(session_key(token)) is not None


def test_unknown_or_malformed_keys_create_nothing(manager: SessionManager) -> None:
    for key in ("a" * 47, "12345678", "x" * 200):
        s = SessionStore(key)
        assert s.load() == {}
        assert s.session_key is None
    assert manager.count() == 0


def test_changes_to_different_keys_in_parallel_both_survive(manager: SessionManager) -> None:
    token = _saved(a=1).session_key
    first, second = SessionStore(token), SessionStore(token)
    first["b"] = 2
    second["c"] = 3
    assert first["a"] == second["a"] == 1  # both loaded before either saved
    first.save()
    second.save()
    assert dict(SessionStore(token).items()) == {"a": 1, "b": 2, "c": 3}
    assert second["b"] == 2  # the save brought the other request's key in


def test_clear_removes_keys_set_by_other_requests_too(manager: SessionManager) -> None:
    token = _saved(a=1).session_key
    first, second = SessionStore(token), SessionStore(token)
    first.load(), second.load()
    first["b"] = 2
    first.save()
    second.clear()
    second["c"] = 3
    second.save()
    assert dict(SessionStore(token).items()) == {"c": 3}


def test_setting_auth_user_rotates_into_the_users_index(manager: SessionManager) -> None:
    s = _saved(cart=["apple"])
    anonymous = s.session_key
    s.cycle_key()  # what django.contrib.auth.login does first
    cycled = s.session_key
    s["_auth_user_id"] = "42"
    s.save()
    assert len({anonymous, cycled, s.session_key}) == 3
    assert SessionStore(anonymous).load() == {} and SessionStore(cycled).load() == {}
    assert SessionStore(s.session_key).load() == {"cart": ["apple"], "_auth_user_id": "42"}
    [listed] = manager.list_user("42")
    assert listed.id == s.record.id  # type: ignore[union-attr]
    s.flush()  # django.contrib.auth.logout
    assert manager.list_user("42") == []


def test_a_save_after_another_request_logged_out_fails(manager: SessionManager) -> None:
    s = _saved(_auth_user_id="7")
    SessionStore(s.session_key).flush()
    s["x"] = 1
    with pytest.raises(UpdateError):
        s.save()
    assert SessionStore(s.session_key).load() == {}


def test_set_expiry_becomes_the_stored_deadlines(manager: SessionManager) -> None:
    s = _saved(a=1)
    s.set_expiry(600)
    s.save()
    timing = manager.store.get(session_key(s.session_key)).timing  # type: ignore[union-attr, arg-type]
    assert timing.idle_timeout == 600
    moment = timezone.now() + timedelta(hours=1)
    s.set_expiry(moment)
    s.save()
    timing = manager.store.get(session_key(s.session_key)).timing  # type: ignore[union-attr, arg-type]
    assert timing.idle_timeout is None
    assert timing.absolute_expires_at == pytest.approx(moment.timestamp())
    s.set_expiry(0)
    s.save()
    assert not manager.store.get(session_key(s.session_key)).timing.persistent  # type: ignore[union-attr, arg-type]


def test_browser_lifetimes_come_from_settings(manager: SessionManager, settings: object) -> None:
    s = _saved(a=1)
    timing = s.record.timing  # type: ignore[union-attr]
    assert timing.idle_timeout == 30 * 60  # huihua's default idle timeout
    assert timing.absolute_expires_at - timing.last_seen_at == pytest.approx(
        settings.SESSION_COOKIE_AGE  # type: ignore[attr-defined]
    )


def test_idle_timeout_ends_the_session(manager: SessionManager, settings: object) -> None:
    settings.HUIHUA_IDLE_TIMEOUT = 1  # type: ignore[attr-defined]
    from huihua.contrib.django.conf import manager as current

    s = _saved(a=1)
    current().clock = clock = __import__("huihua.core.clock", fromlist=["FakeClock"]).FakeClock(
        s.record.created_at + 5  # type: ignore[union-attr]
    )
    assert clock.now() > s.record.expires_at  # type: ignore[union-attr]
    assert SessionStore(s.session_key).load() == {}


def test_clear_expired_and_clearsessions_purge(manager: SessionManager, settings: object) -> None:
    settings.SESSION_ENGINE = "huihua.contrib.django.session"  # type: ignore[attr-defined]
    live = _saved(a=1)
    dead = _saved(b=2)
    dead.set_expiry(-10)
    dead.save()
    assert manager.store.get(session_key(dead.session_key)) is not None  # type: ignore[arg-type]
    management.call_command("clearsessions")
    assert manager.store.get(session_key(dead.session_key)) is None  # type: ignore[arg-type]
    assert SessionStore(live.session_key).load() == {"a": 1}


def test_async_methods_do_not_fall_back_to_threads(
    manager: SessionManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = _saved(a=1).session_key

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("a sync method ran under an async one")

    for name in ("load", "save", "create", "exists", "delete", "cycle_key"):
        monkeypatch.setattr(SessionStore, name, forbidden)
    monkeypatch.setattr(SessionManager, "load", forbidden)
    monkeypatch.setattr(SessionManager, "save", forbidden)

    async def flow() -> None:
        s = SessionStore(token)
        assert await s.aget("a") == 1
        await s.aset("b", 2)
        await s.acycle_key()
        await s.asave()
        assert await SessionStore(s.session_key).aitems() is not None
        assert await s.aexists(s.session_key)
        await s.aflush()
        assert not await s.aexists(token)

    async_to_sync(flow)()
