"""X-Client-Kind on Django, as on the service: header clients may say what they are."""

from __future__ import annotations

import pytest
from django.test import Client

from huihua.core.manager import SessionManager
from huihua.core.tokens import session_key

pytestmark = pytest.mark.django_db

COUNTER = "/api/counter/session"


@pytest.mark.parametrize(
    ("declared", "kind", "idle"), [(None, "miniprogram", 2 * 86400), ("service", "service", 900)]
)
def test_the_declared_kind_picks_the_lifetimes(
    manager: SessionManager, declared: str | None, kind: str, idle: float
) -> None:
    headers = {"X-Session-Transport": "header", **({"X-Client-Kind": declared} if declared else {})}
    answer = Client().post(COUNTER, headers=headers)
    assert answer.status_code == 200, answer.content
    record = manager.store.get(session_key(answer.headers["X-Session-Token"]))
    assert record is not None and record.client == kind and record.timing.idle_timeout == idle


@pytest.mark.parametrize(
    ("headers", "said"),
    [
        ({"X-Session-Transport": "header", "X-Client-Kind": "robot"}, "miniprogram, service, browser"),
        ({"X-Client-Kind": "service"}, "X-Session-Transport: header"),
    ],
)
def test_an_unknown_or_impossible_kind_is_a_json_400(
    manager: SessionManager, headers: dict[str, str], said: str
) -> None:
    answer = Client().post(COUNTER, headers=headers)
    assert answer.status_code == 400
    assert (
        answer.json()["error"]["code"] == "invalid_client_kind" and said in answer.json()["error"]["message"]
    )
    assert manager.count() == 0
