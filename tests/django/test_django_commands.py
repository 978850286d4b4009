"""Management commands: huihua_purge, huihua_sessions, huihua_import_sessions."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.sessions.backends.db import SessionStore as DatabaseSession
from django.contrib.sessions.models import Session as DjangoSession
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from huihua.contrib.django import legacy
from huihua.contrib.django.session import SessionStore
from huihua.core.manager import SessionManager

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_purge(manager: SessionManager) -> None:
    keep = SessionStore()
    keep["a"] = 1
    keep.save()
    gone = SessionStore()
    gone["b"] = 1
    gone.set_expiry(-5)
    gone.save()
    assert "purged 1 " in _run("huihua_purge")
    assert "purged 0 " in _run("huihua_purge")
    assert SessionStore(keep.session_key).load() == {"a": 1}


def test_sessions_list_and_revoke(manager: SessionManager, django_user_model: Any) -> None:
    django_user_model.objects.create_user("dee", password="pw-dee-123")
    clients = [Client(), Client()]
    for client in clients:
        client.login(username="dee", password="pw-dee-123")
    listing = _run("huihua_sessions", "list", "dee")
    assert listing.startswith("2 live session(s)")
    first_id = listing.splitlines()[1].split()[0]
    assert "revoked 1 session" in _run("huihua_sessions", "revoke", "dee", "--id", first_id)
    with pytest.raises(CommandError):
        _run("huihua_sessions", "revoke", "dee", "--id", first_id)
    assert "revoked 1 session(s)" in _run("huihua_sessions", "revoke", "dee", "--all")
    assert all(c.get("/api/auth/me").status_code == 401 for c in clients)
    with pytest.raises(CommandError):
        _run("huihua_sessions", "list", "nobody")


def _django_session(**data: Any) -> str:
    """A session as Django's db backend writes it (before the project switched engines)."""
    old = DatabaseSession()
    old.update(data)
    old.save()
    assert old.session_key is not None and len(old.session_key) == 32
    return old.session_key


def test_imported_sessions_keep_users_logged_in_once(manager: SessionManager, django_user_model: Any) -> None:
    eve = django_user_model.objects.create_user("eve", password="pw-eve-123")
    client = Client()
    client.login(username="eve", password="pw-eve-123")  # to learn the auth data Django stores
    auth = dict(SessionStore(client.cookies["sessionid"].value).items())
    old_key = _django_session(**auth, cart=["tea"])
    expired = DatabaseSession()
    expired["x"] = 1
    expired.set_expiry(-60)
    expired.save()

    assert "imported 1 session(s); 0 imported before" in _run("huihua_import_sessions")
    assert "imported 0 session(s); 1 imported before" in _run("huihua_import_sessions")
    assert len(manager.list_user(str(eve.pk))) == 2  # filed under eve before first use

    browser = Client()
    browser.cookies["sessionid"] = old_key
    me = browser.get("/api/auth/me")
    assert me.status_code == 200, me.content
    new_token = me.cookies["sessionid"].value
    assert len(new_token) == 47
    assert SessionStore(new_token).load()["cart"] == ["tea"]
    assert manager.store.kv_get(legacy.pointer(old_key), now=manager.clock.now()) is None

    replay = Client()
    replay.cookies["sessionid"] = old_key
    assert replay.get("/api/auth/me").status_code == 401  # the old key worked once
    assert SessionStore(expired.session_key).load() == {}


def test_import_dry_run_writes_nothing(manager: SessionManager) -> None:
    _django_session(a=1)
    assert "would import 1 session(s)" in _run("huihua_import_sessions", "--dry-run")
    assert manager.count() == 0
    assert DjangoSession.objects.filter(expire_date__gt=timezone.now() - timedelta(1)).count() == 1


def test_unknown_legacy_keys_create_nothing(manager: SessionManager) -> None:
    browser = Client()
    browser.cookies["sessionid"] = "a" * 32
    answer = browser.get("/api/counter/session")
    assert answer.json() == {"count": 0}
    assert answer.cookies["sessionid"].value == ""  # Django's way to drop a dead cookie
    assert manager.count() == 0
