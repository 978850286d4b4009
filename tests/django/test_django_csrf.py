"""A failed CSRF check answers a JSON client in huihua's error format (issue 15 item 7)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from huihua.core.manager import SessionManager

pytestmark = pytest.mark.django_db

COUNTER = "/api/counter/session"


def test_the_tutorial_sets_the_json_csrf_failure_view() -> None:
    assert settings.CSRF_FAILURE_VIEW == "huihua.contrib.django.csrf.csrf_failure"


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        (COUNTER, {}),  # an API path
        ("/logout/", {"Accept": "application/json"}),
        ("/logout/", {"Content-Type": "application/json"}),
    ],
)
def test_a_json_client_gets_json_not_djangos_page(
    manager: SessionManager, path: str, headers: dict[str, str]
) -> None:
    client = Client(enforce_csrf_checks=True)
    answer = client.post(
        path, data=b"{}", content_type=headers.pop("Content-Type", "text/plain"), headers=headers
    )
    assert answer.status_code == 403
    assert answer.headers["Content-Type"] == "application/json"
    error = answer.json()["error"]
    assert error["code"] == "csrf_failed"
    assert "X-CSRFToken" in error["message"] and "CSRF_TRUSTED_ORIGINS" in error["message"]
    assert "X-Session-Transport: header" in error["message"]


def test_a_cross_origin_json_write_is_told_why(manager: SessionManager) -> None:
    client = Client(enforce_csrf_checks=True)
    client.get("/counter/session/")
    csrf = client.cookies["csrftoken"].value
    answer = client.post(
        COUNTER, headers={"X-CSRFToken": csrf, "Origin": "https://evil.example"}, secure=True
    )
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "csrf_failed"
    assert "https://evil.example" in answer.json()["error"]["message"]


def test_a_form_page_still_gets_djangos_page(manager: SessionManager) -> None:
    answer = Client(enforce_csrf_checks=True).post("/logout/", {"x": "1"})
    assert answer.status_code == 403
    assert answer.headers["Content-Type"].startswith("text/html")
