"""Django's WeChat views on the shared use case: the service's idempotent exchange, errors and
bind rules (issue 9 item 10)."""

from __future__ import annotations

import base64
import logging
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier, Lock
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.contrib.auth.signals import user_login_failed
from django.db import connections
from django.test import Client, RequestFactory
from test_django_views import _code

from huihua.contrib.django import crypto, passwords
from huihua.contrib.django.models import WeChatIdentity
from huihua.core.errors import HuihuaError
from huihua.core.manager import SessionManager

pytestmark = pytest.mark.django_db
KEY = "django-attempt-key-0123456789"


def _login(code: str, key: str | None = None, **body: Any) -> Any:
    headers = {"X-Session-Transport": "header"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return Client().post("/api/wechat/login", {"code": code, **body}, content_type="application/json",
                         headers=headers)  # fmt: skip


def _bind(token: str, username: str, password: str) -> Any:
    return Client().post("/api/wechat/bind", {"username": username, "password": password},
                         content_type="application/json", headers={"Authorization": f"Bearer {token}"})  # fmt: skip


def _jscode_calls(control: httpx.Client) -> int:
    return sum(
        1 for c in control.get("/_emulator/calls").json()["calls"] if c["path"] == "/sns/jscode2session"
    )


def _refused(answer: Any, status: int, code: str) -> None:
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), answer.content
    assert "token" not in answer.json()
    assert "X-Session-Token" not in answer.headers


def test_a_retry_with_the_same_key_gets_the_same_session(
    emulator: httpx.Client, manager: SessionManager
) -> None:
    code, _ = _code(emulator)
    first, retry = _login(code, KEY), _login(code, KEY)
    assert first.status_code == retry.status_code == 200, (first.content, retry.content)
    assert retry.json()["token"] == first.json()["token"] == retry.headers["X-Session-Token"]
    assert retry.json()["user"] == first.json()["user"]
    assert manager.count() == 1
    assert _jscode_calls(emulator) == 1


def test_a_leaked_code_without_the_key_gets_no_token(emulator: httpx.Client, manager: SessionManager) -> None:
    code, _ = _code(emulator)
    assert _login(code, KEY).status_code == 200
    for other in (None, "another-attempt-key-987654321"):
        _refused(_login(code, other), 400, "wechat_code_used")
    assert manager.count() == 1


def test_a_malformed_idempotency_key_is_refused(emulator: httpx.Client, manager: SessionManager) -> None:
    code, _ = _code(emulator)
    _refused(_login(code, "short"), 400, "idempotency_key_invalid")
    assert _jscode_calls(emulator) == 0


@pytest.mark.parametrize(
    "open_data",
    [
        pytest.param({"raw_data": "[1]", "signature": "0" * 40}, id="raw-data-a-list"),
        pytest.param({"raw_data": '{"a": 1}'}, id="unsigned"),
        pytest.param({"raw_data": "[" * 4000 + "]" * 4000, "signature": "0" * 40}, id="raw-data-deep"),
    ],
)
def test_bad_raw_data_is_refused_before_any_session(
    emulator: httpx.Client, manager: SessionManager, open_data: dict[str, str]
) -> None:
    code, _ = _code(emulator)
    _refused(_login(code, KEY, **open_data), 400, "wechat_data_invalid")
    assert manager.count() == 0
    assert _jscode_calls(emulator) == 0


def test_wechat_not_configured_is_503(settings: Any, manager: SessionManager) -> None:
    settings.HUIHUA_WECHAT_APPID, settings.HUIHUA_WECHAT_SECRET = "", ""
    answer = _login("some-code", KEY)
    _refused(answer, 503, "wechat_not_configured")
    assert "HUIHUA_WECHAT_APPID" in answer.json()["error"]["message"]


def test_bind_refuses_to_rebind_and_to_take_a_bound_account(
    emulator: httpx.Client, manager: SessionManager, django_user_model: Any
) -> None:
    django_user_model.objects.create_user("ada", password="pw-ada-123")
    django_user_model.objects.create_user("bo", password="pw-bo-1234")
    code, _ = _code(emulator)
    token = _bind(_login(code, KEY).json()["token"], "ada", "pw-ada-123").json()["token"]
    _refused(_bind(token, "bo", "pw-bo-1234"), 409, "wechat_already_bound")
    other, _ = _code(emulator)
    _refused(_bind(_login(other, KEY).json()["token"], "ada", "pw-ada-123"), 409, "account_already_bound")


def test_bind_merges_the_placeholder_away_and_emits_an_event(
    emulator: httpx.Client, manager: SessionManager, django_user_model: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ada = django_user_model.objects.create_user("ada", password="pw-ada-123")
    code, openid = _code(emulator)
    login = _login(code, KEY).json()
    placeholder = login["user"]["id"]
    other_device, _ = _code(emulator, openid=openid)
    second = _login(other_device, "second-device-key-0123456").json()["token"]
    with caplog.at_level(logging.INFO, logger="huihua.events"):
        bound = _bind(login["token"], "ada", "pw-ada-123")
    assert bound.status_code == 200, bound.content
    assert bound.json()["user"]["id"] == str(ada.pk)
    assert not django_user_model.objects.get(pk=placeholder).is_active
    assert manager.list_user(placeholder) == []  # the other device's placeholder session too
    assert Client().get("/api/auth/me", headers={"Authorization": f"Bearer {second}"}).status_code == 401
    events = [r.getMessage() for r in caplog.records if r.name == "huihua.events"]
    assert any(e.startswith("session identity_bound") and f"user={ada.pk}" in e for e in events), events
    assert WeChatIdentity.objects.get(openid=openid).user == ada


def test_bind_needs_a_wechat_session(manager: SessionManager, django_user_model: Any) -> None:
    django_user_model.objects.create_user("cy", password="pw-cy-1234")
    client = Client()
    client.login(username="cy", password="pw-cy-1234")
    answer = client.post("/api/wechat/bind", {"username": "cy", "password": "pw-cy-1234"},
                         content_type="application/json")  # fmt: skip
    assert (answer.status_code, answer.json()["error"]["code"]) == (409, "not_a_wechat_session")


def test_binds_password_check_is_throttled(
    emulator: httpx.Client, manager: SessionManager, django_user_model: Any
) -> None:
    django_user_model.objects.create_user("ada", password="pw-ada-123")
    code, _ = _code(emulator)
    token = _login(code, KEY).json()["token"]
    for _ in range(passwords.ACCOUNT_FAILURES):
        _refused(_bind(token, "ada", "wrong-guess"), 403, "invalid_credentials")
    throttled = _bind(token, "ADA", "pw-ada-123")  # even the right one, under another spelling
    _refused(throttled, 429, "too_many_attempts")
    assert int(throttled.headers["Retry-After"]) > 0


def test_session_keys_use_the_one_sealing_and_legacy_fernet_values_still_open(settings: Any) -> None:
    sealed = crypto.encrypt("the-session-key")
    assert sealed.startswith("v1.")  # accounts.sealing's AES-GCM format, as the service seals
    assert crypto.box().unseal(sealed) == "the-session-key"
    info = b"huihua.contrib.django: wechat session_key at rest"
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(
        settings.SECRET_KEY.encode()
    )
    legacy = Fernet(base64.urlsafe_b64encode(key)).encrypt(b"an-old-session-key").decode()
    assert crypto.decrypt(legacy) == "an-old-session-key"
    assert crypto.decrypt("v1.deadbeef.AAAA") is None


def test_parallel_wrong_passwords_cost_what_sequential_ones_cost(manager: SessionManager) -> None:
    """Issue 9 item 1 for Django's bind check: 20 guesses at once for one account reach
    authenticate() (counted by Django's own user_login_failed signal) exactly ACCOUNT_FAILURES
    times, as 20 guesses one after another would; the rest are 429 before any hashing."""
    verified, lock, start = [0], Lock(), Barrier(20)

    def count(**_: Any) -> None:
        with lock:
            verified[0] += 1

    def guess(i: int) -> int:
        request = RequestFactory().post(
            "/", REMOTE_ADDR=f"198.51.100.{i}"
        )  # the per-IP limit stays out of it
        start.wait()
        try:
            passwords.check_password(request, "grace", "wrong-guess")
        except HuihuaError as refused:
            return refused.status
        finally:
            connections.close_all()  # this thread's database connection
        return 200

    user_login_failed.connect(count)
    try:
        with ThreadPoolExecutor(20) as pool:
            statuses = sorted(pool.map(guess, range(20)))
    finally:
        user_login_failed.disconnect(count)
    assert verified[0] == passwords.ACCOUNT_FAILURES, statuses
    assert statuses == [403] * passwords.ACCOUNT_FAILURES + [429] * (20 - passwords.ACCOUNT_FAILURES)
