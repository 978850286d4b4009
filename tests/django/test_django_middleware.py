"""The header transport for mini programs and the cookie transport for browsers (docs/http-api.md#transports)."""

from __future__ import annotations

import pytest
from django.test import Client

from huihua.core.errors import StoreUnavailable
from huihua.core.manager import SessionManager

pytestmark = pytest.mark.django_db

COUNTER = "/api/counter/session"


def _vary(response: object) -> set[str]:
    return {v.strip().lower() for v in response.headers.get("Vary", "").split(",")}  # type: ignore[attr-defined]


def test_header_client_gets_its_token_in_a_header_never_a_cookie(manager: SessionManager) -> None:
    client = Client(enforce_csrf_checks=True)
    first = client.post(COUNTER, headers={"X-Session-Transport": "header"})
    assert first.status_code == 200, first.content  # no CSRF token needed
    token = first.headers["X-Session-Token"]
    assert len(token) == 47
    assert not first.cookies
    again = client.post(COUNTER, headers={"Authorization": f"Bearer {token}"})
    assert again.json() == {"count": 2}
    assert "X-Session-Token" not in again.headers  # unchanged token: nothing to send
    assert not again.cookies


def test_header_clients_do_not_read_cookies(manager: SessionManager) -> None:
    browser = Client()
    browser.post(COUNTER)
    assert browser.cookies["sessionid"].value
    answer = browser.post(COUNTER, headers={"X-Session-Transport": "header"})
    assert answer.json() == {"count": 1}  # a new session, not the cookie's


def test_header_sessions_are_miniprogram_sessions(manager: SessionManager) -> None:
    answer = Client().post(COUNTER, headers={"X-Session-Transport": "header"},
                           HTTP_USER_AGENT="wechat-devtools", REMOTE_ADDR="10.0.0.7")  # fmt: skip
    from huihua.core.tokens import session_key

    record = manager.store.get(session_key(answer.headers["X-Session-Token"]))
    assert record is not None
    assert (record.client, record.user_agent, record.ip) == ("miniprogram", "wechat-devtools", "10.0.0.7")
    assert record.timing.idle_timeout == 2 * 86400


def test_unknown_bearer_token_is_dropped_and_nothing_created(manager: SessionManager) -> None:
    answer = Client().get(COUNTER, headers={"Authorization": "Bearer " + "A" * 47})
    assert answer.json() == {"count": 0}
    assert answer.headers["X-Session-Token"] == ""
    assert manager.count() == 0


def test_browser_writes_still_need_csrf(manager: SessionManager) -> None:
    client = Client(enforce_csrf_checks=True)
    assert client.post(COUNTER).status_code == 403
    page = client.get("/counter/session/")
    csrf = client.cookies["csrftoken"].value
    assert page.status_code == 200
    answer = client.post(COUNTER, headers={"X-CSRFToken": csrf})
    assert answer.json() == {"count": 1}
    cookie = answer.cookies["sessionid"]
    assert len(cookie.value) == 47 and cookie["httponly"] and cookie["samesite"] == "Lax"
    assert "X-Session-Token" not in answer.headers


def test_session_responses_are_private(manager: SessionManager) -> None:
    for headers in ({}, {"X-Session-Transport": "header"}):
        answer = Client().post(COUNTER, headers=headers)
        assert "no-store" in answer.headers["Cache-Control"]
        assert {"cookie", "authorization"} <= _vary(answer)


def test_responses_that_never_touched_a_session_stay_cacheable(manager: SessionManager) -> None:
    answer = Client().get("/api/counter/cookie")
    assert "Cache-Control" not in answer.headers


def test_logout_ends_the_session_and_tells_the_header_client(
    manager: SessionManager, django_user_model: object
) -> None:
    django_user_model.objects.create_user("ada", password="pw-ada-123")  # type: ignore[attr-defined]
    client = Client()
    client.login(username="ada", password="pw-ada-123")
    token = client.cookies["sessionid"].value
    answer = client.post("/api/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 204
    assert answer.headers["X-Session-Token"] == ""
    assert Client().get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_store_outage_answers_503_not_logged_out(
    manager: SessionManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = Client().post(COUNTER, headers={"X-Session-Transport": "header"}).headers["X-Session-Token"]

    def down(*args: object, **kwargs: object) -> None:
        raise StoreUnavailable("redis is down")

    monkeypatch.setattr(type(manager.store), "get", down)
    answer = Client().post(COUNTER, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "store_unavailable"
    assert "X-Session-Token" not in answer.headers
