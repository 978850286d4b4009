"""Django's `/v1` routes (contrib/django/v1.py) answer as the service does (issue 15 item 2): the
same scenario runs against an in-process `huihua.http.app.create_app` and against Django (the
tutorial, which mounts `path("", include("huihua.contrib.django.v1_urls"))`), and every step must
give the same status, error code and JSON shape (key sets, recursively; data values too)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import resolve

from huihua.config import Secret, Settings
from huihua.core.manager import SessionManager
from huihua.http.app import create_app
from huihua.wechat.emulator import DEFAULT_APPID, DEFAULT_SECRET, SyncASGITransport
from huihua.wechat.emulator import create_app as create_emulator

pytestmark = pytest.mark.django_db

KEY = "v1-attempt-key-0123456789"
PASSWORD = "a long enough password 1"
Call = Callable[..., tuple[int, Any, httpx.Headers | dict[str, str]]]


def shape(value: Any) -> Any:
    """The JSON's structure: dict keys (recursively), list items' shapes, scalars' JSON types."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return "null" if value is None else type(value).__name__


def django_call(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    data = json.dumps(body) if body is not None else ""
    answer = Client().generic(method, path, data, content_type="application/json", headers=headers or {})
    parsed = json.loads(answer.content) if answer.content else None
    return answer.status_code, parsed, dict(answer.headers)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[Call, httpx.Client]]:
    emulator_app = create_emulator()
    settings = Settings(
        store=f"sqlite:///{tmp_path}/service.db",  # accounts in the same SQLite file
        wechat_appid=DEFAULT_APPID,
        wechat_secret=Secret(DEFAULT_SECRET),
        wechat_api_base="http://wechat.test",
    )
    app = create_app(settings, sweeper=False, wechat_transport=httpx.ASGITransport(app=emulator_app))
    transport, served = SyncASGITransport(emulator_app), SyncASGITransport(app)
    with (
        httpx.Client(base_url="http://service.test", transport=served) as client,
        httpx.Client(base_url="http://wechat.test", transport=transport) as control,
    ):

        def call(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
            answer = client.request(method, path, json=body, headers=headers or {})
            return answer.status_code, (answer.json() if answer.content else None), answer.headers

        yield call, control
    transport.close()
    served.close()


def scenario(call: Call, control: httpx.Client, make_account: Callable[[], None]) -> list[Any]:
    """What a mini program does, step by step; each step's status, error code and shape."""
    seen: list[Any] = []

    def step(name: str, method: str, path: str, body: Any = None, token: str | None = None,
             **headers: str) -> Any:  # fmt: skip
        headers.setdefault("User_Agent", "huihua-v1-test")
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        sent = {k.replace("_", "-"): v for k, v in headers.items()}
        status, parsed, got = call(method, path, body, sent)
        code = parsed["error"]["code"] if isinstance(parsed, dict) and "error" in parsed else None
        data = parsed.get("data") if isinstance(parsed, dict) else None
        seen.append((name, status, code, shape(parsed), data, bool(got.get("X-Session-Token"))))
        return parsed, got

    login = control.post("/_emulator/login", json={}).json()
    step("me, no session", "GET", "/v1/auth/me")
    step("data, no session", "GET", "/v1/session/data")
    visitor, _ = step("data, visitor write", "PATCH", "/v1/session/data", {"set": {"seen": True}},
                      X_Session_Transport="header")  # fmt: skip
    step("data, visitor read", "GET", "/v1/session/data", token=visitor["token"])
    step("login, bad code", "POST", "/v1/auth/wechat", {"code": ""}, X_Session_Transport="header")
    step(
        "login, extra field",
        "POST",
        "/v1/auth/wechat",
        {"code": "x", "nope": 1},
        X_Session_Transport="header",
    )
    step("login, bad key", "POST", "/v1/auth/wechat", {"code": login["code"]}, X_Session_Transport="header",
         Idempotency_Key="short")  # fmt: skip
    answer, _ = step("login", "POST", "/v1/auth/wechat", {"code": login["code"]}, X_Session_Transport="header",
                     Idempotency_Key=KEY)  # fmt: skip
    token = answer["token"]
    assert answer["user"]["id"] and isinstance(answer["user"]["id"], str)
    step("login, replayed", "POST", "/v1/auth/wechat", {"code": login["code"]}, X_Session_Transport="header",
         Idempotency_Key=KEY)  # fmt: skip
    step("login, code used", "POST", "/v1/auth/wechat", {"code": login["code"]}, X_Session_Transport="header",
         Idempotency_Key=KEY + "x")  # fmt: skip
    step("me", "GET", "/v1/auth/me", token=token)
    step("me, wrong method", "DELETE", "/v1/auth/me", token=token)
    step("data", "GET", "/v1/session/data", token=token)
    step("data, incr", "POST", "/v1/session/data", {"incr": {"counter": 1}}, token=token,
         X_HTTP_Method_Override="PATCH")  # fmt: skip
    step(
        "data, set",
        "PATCH",
        "/v1/session/data",
        {"set": {"name": "张三"}, "incr": {"counter": 2}},
        token=token,
    )
    step("data, bad incr", "PATCH", "/v1/session/data", {"incr": {"counter": "x"}}, token=token)
    step("data, twice", "PATCH", "/v1/session/data", {"set": {"a": 1}, "unset": ["a"]}, token=token)
    step("data, not json", "PATCH", "/v1/session/data", None, token=token)
    step("data, after", "GET", "/v1/session/data", token=token)
    phone = control.post(
        "/_emulator/phone-code", json={"openid": login["openid"], "phone": "13800000000"}
    ).json()
    step("phone", "POST", "/v1/auth/wechat/phone", {"code": phone["code"]}, token=token)
    step("phone, used code", "POST", "/v1/auth/wechat/phone", {"code": phone["code"]}, token=token)
    step("sessions", "GET", "/v1/sessions", token=token)
    step("revoke, unknown", "DELETE", "/v1/sessions/nope", token=token)
    step("unknown route", "GET", "/v1/nope", token=token)
    make_account()
    step("bind, wrong password", "POST", "/v1/auth/wechat/bind", {"username": "alice", "password": "wrong one"},
         token=token)  # fmt: skip
    answer, _ = step("bind", "POST", "/v1/auth/wechat/bind", {"username": "alice", "password": PASSWORD},
                     token=token, X_Session_Transport="header")  # fmt: skip
    token = answer["token"]
    step("me, bound", "GET", "/v1/auth/me", token=token)
    step("logout", "POST", "/v1/auth/logout", token=token)
    step("me, logged out", "GET", "/v1/auth/me", token=token)
    step("bind, logged out", "POST", "/v1/auth/wechat/bind", {"username": "alice", "password": PASSWORD})
    return seen


def test_django_v1_answers_as_the_service_does(
    service: tuple[Call, httpx.Client], emulator: httpx.Client, manager: SessionManager
) -> None:
    call, control = service

    def service_account() -> None:
        status, _, _ = call("POST", "/v1/accounts", {"username": "alice", "password": PASSWORD})
        assert status == 201

    def django_account() -> None:
        get_user_model().objects.create_user("alice", password=PASSWORD)

    expected = scenario(call, control, service_account)
    got = scenario(django_call, emulator, django_account)
    assert [s[0] for s in got] == [s[0] for s in expected]
    differ = [(want, have) for want, have in zip(expected, got, strict=True) if have != want]
    assert not differ, "Django answers differently from the service:\n" + "\n".join(
        f"{want[0]}:\n  service {want[1:]}\n  django  {have[1:]}" for want, have in differ
    )
    by_name = {s[0]: s for s in got}
    assert by_name["data, after"][4] == {"counter": 3, "name": "张三"}
    assert by_name["login"][1:3] == (200, None)


def test_sdk_paths_are_served_by_the_tutorial() -> None:
    """Every path the SDK (clients/miniprogram/src) and the example mini program request resolves."""
    root = Path(__file__).resolve().parents[2]
    sources = [
        *(root / "clients/miniprogram/src").glob("*.ts"),
        *(root / "examples/miniprogram").rglob("*.js"),
    ]
    paths = {m for f in sources for m in re.findall(r"'(/v1/[a-z/_-]+)'", f.read_text(encoding="utf-8"))}
    assert {"/v1/auth/wechat", "/v1/auth/me", "/v1/session/data", "/v1/sessions/"} <= paths
    for found in paths:
        match = resolve(found + ("x" if found.endswith("/") else ""))
        assert match.namespace == "huihua_v1" and match.func.__name__ != "not_found", found
