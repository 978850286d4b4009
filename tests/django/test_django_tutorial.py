"""The tutorial project (examples/django_tutorial) end to end, as a browser and a mini program."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from huihua.core.manager import SessionManager

pytestmark = pytest.mark.django_db


def _csrf(client: Client, page: str) -> str:
    html = client.get(page).content.decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, page
    return match.group(1)


def test_set_a_message_then_read_it_on_another_page(manager: SessionManager) -> None:
    client = Client()
    assert "No message yet" in client.get("/message/").content.decode()
    assert client.get("/message/set/").status_code == 200
    assert "stored in your session" in client.get("/message/").content.decode()
    assert "No message yet" in Client().get("/message/").content.decode()  # another browser


@pytest.mark.parametrize("kind", ["cookie", "session"])
def test_counters(manager: SessionManager, kind: str) -> None:
    client = Client(enforce_csrf_checks=True)
    csrf = _csrf(client, f"/counter/{kind}/")
    for expected in (1, 2, 3):
        answer = client.post(f"/api/counter/{kind}", headers={"X-CSRFToken": csrf})
        assert answer.json() == {"count": expected}
    assert '<strong id="count">3</strong>' in client.get(f"/counter/{kind}/").content.decode()
    if kind == "cookie":
        assert client.cookies["count"].value == "3"
        assert manager.count() == 0  # no session at all
    else:
        assert "count" not in client.cookies and manager.count() == 1


def test_register_login_index_logout(manager: SessionManager, django_user_model: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    assert client.get("/").status_code == 302  # index is for logged-in users only
    csrf = _csrf(client, "/register/")
    form = {"username": "fay", "password1": "a-long-pass-phrase", "password2": "a-long-pass-phrase",
            "csrfmiddlewaretoken": csrf}  # fmt: skip
    assert client.post("/register/", form).status_code == 302
    user = django_user_model.objects.get(username="fay")
    assert user.password.startswith("md5$") and "a-long-pass-phrase" not in user.password  # hashed
    assert "Welcome, fay" in client.get("/").content.decode()
    csrf = _csrf(client, "/")
    assert client.post("/logout/", {"csrfmiddlewaretoken": csrf}).status_code == 302
    assert client.get("/").status_code == 302
    assert manager.list_user(str(user.pk)) == []

    anonymous = client.cookies.get("sessionid")
    csrf = _csrf(client, "/login/")
    login = client.post("/login/?next=/", {"username": "fay", "password": "a-long-pass-phrase",
                                           "csrfmiddlewaretoken": csrf})  # fmt: skip
    assert login.status_code == 302 and login.headers["Location"] == "/"
    assert client.cookies["sessionid"].value != getattr(anonymous, "value", None)  # rotated
    assert "Welcome, fay" in client.get("/").content.decode()
    bad = Client()
    csrf = _csrf(bad, "/login/")
    assert bad.post("/login/", {"username": "fay", "password": "wrong",
                                "csrfmiddlewaretoken": csrf}).status_code == 200  # fmt: skip
    assert bad.get("/").status_code == 302


def test_login_keeps_the_anonymous_session_data(manager: SessionManager, django_user_model: Any) -> None:
    django_user_model.objects.create_user("gus", password="pw-gus-1234")
    client = Client()
    client.get("/message/set/")
    before = client.cookies["sessionid"].value
    csrf = _csrf(client, "/login/")
    client.post("/login/", {"username": "gus", "password": "pw-gus-1234", "csrfmiddlewaretoken": csrf})
    assert client.cookies["sessionid"].value != before
    assert "stored in your session" in client.get("/message/").content.decode()
    stolen = Client()
    stolen.cookies["sessionid"] = before
    assert stolen.get("/").status_code == 302  # the pre-login token died at login (no fixation)
