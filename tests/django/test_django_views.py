"""WeChat login and bind, logout, me, "my sessions", and the WeChat identity model."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from django.test import Client

from huihua.contrib.django import crypto
from huihua.contrib.django.models import WeChatIdentity
from huihua.core.manager import SessionManager

pytestmark = pytest.mark.django_db


def _code(control: httpx.Client, **phone: str) -> tuple[str, str]:
    answer = control.post("/_emulator/login", json=phone).json()
    return answer["code"], answer["openid"]


def _wechat_login(code: str) -> Any:
    return Client().post("/api/wechat/login", {"code": code}, content_type="application/json",
                         headers={"X-Session-Transport": "header"})  # fmt: skip


def test_wechat_login_creates_a_user_and_a_header_session(
    emulator: httpx.Client, manager: SessionManager
) -> None:
    code, openid = _code(emulator)
    answer = _wechat_login(code)
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["token"] == answer.headers["X-Session-Token"]
    assert body["bound"] is False
    assert "session_key" not in answer.content.decode()
    assert not answer.cookies  # not even the CSRF cookie Django's login() rotates
    identity = WeChatIdentity.objects.get(openid=openid)
    assert str(identity.user.pk) == body["user"]["id"]
    assert [s.id for s in manager.list_user(body["user"]["id"])] == [body["session"]["id"]]
    me = Client().get("/api/auth/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.json()["user"] == body["user"]


def test_the_same_openid_finds_the_same_user(emulator: httpx.Client, manager: SessionManager) -> None:
    code, openid = _code(emulator)
    first = _wechat_login(code).json()
    again, _ = _code(emulator, openid=openid)
    second = _wechat_login(again).json()
    assert first["user"] == second["user"] and first["token"] != second["token"]
    assert WeChatIdentity.objects.filter(openid=openid).count() == 1


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        pytest.param("never-issued", 400, "wechat_code_invalid", id="invalid"),
        pytest.param(None, 400, "invalid_request", id="missing"),
    ],
)
def test_wechat_login_errors(
    emulator: httpx.Client, manager: SessionManager, code: str | None, status: int, error: str
) -> None:
    answer = _wechat_login(code)  # type: ignore[arg-type]
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, error)
    assert manager.count() == 0


def test_a_code_works_once(emulator: httpx.Client, manager: SessionManager) -> None:
    code, _ = _code(emulator)
    assert _wechat_login(code).status_code == 200
    assert _wechat_login(code).json()["error"]["code"] == "wechat_code_used"


def test_wechat_unavailable_is_503(emulator: httpx.Client, manager: SessionManager) -> None:
    code, _ = _code(emulator)
    emulator.post("/_emulator/faults", json={"path": "/sns/jscode2session", "errcode": -1, "times": 5})
    answer = _wechat_login(code)
    assert (answer.status_code, answer.json()["error"]["code"]) == (503, "wechat_unavailable")


def test_session_key_is_encrypted_at_rest(emulator: httpx.Client, manager: SessionManager) -> None:
    code, openid = _code(emulator)
    _wechat_login(code)
    identity = WeChatIdentity.objects.get(openid=openid)
    session_key = identity.get_session_key()
    assert session_key and session_key not in identity.session_key_encrypted
    assert session_key not in repr(identity) + str(identity)


def test_encryption_follows_secret_key_rotation(settings: Any) -> None:
    sealed = crypto.encrypt("the-session-key")
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-key-" * 5, [settings.SECRET_KEY]
    assert crypto.decrypt(sealed) == "the-session-key"
    settings.SECRET_KEY_FALLBACKS = []
    assert crypto.decrypt(sealed) is None


def test_bind_ties_the_identity_to_an_account_and_rotates(
    emulator: httpx.Client, manager: SessionManager, django_user_model: Any
) -> None:
    ada = django_user_model.objects.create_user("ada", password="pw-ada-123")
    code, openid = _code(emulator)
    token = _wechat_login(code).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    wrong = Client().post("/api/wechat/bind", {"username": "ada", "password": "nope"},
                          content_type="application/json", headers=auth)  # fmt: skip
    # 403 as the service answers it: the session is authenticated, the password confirmation failed
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (403, "invalid_credentials")
    answer = Client().post("/api/wechat/bind", {"username": "ada", "password": "pw-ada-123"},
                           content_type="application/json", headers=auth)  # fmt: skip
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["bound"] is True and body["user"]["id"] == str(ada.pk)
    assert body["token"] != token
    assert Client().get("/api/auth/me", headers=auth).status_code == 401  # the old token is dead
    identity = WeChatIdentity.objects.get(openid=openid)
    assert identity.user == ada and identity.bound
    again, _ = _code(emulator, openid=openid)
    assert _wechat_login(again).json()["user"]["id"] == str(ada.pk)


DEEP_ARRAY = "[" * 10_000 + "]" * 10_000
DEEP_OBJECT = '{"a":' * 10_000 + "1" + "}" * 10_000


def _nested(levels: int) -> str:
    """A WeChat login body whose "code" field is fine and whose whole nests `levels` levels."""
    return '{"code": "never-issued", "extra": ' + "[" * (levels - 1) + "]" * (levels - 1) + "}"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        pytest.param(DEEP_ARRAY, "json_too_deep", id="array-10000-deep"),
        pytest.param(DEEP_OBJECT, "json_too_deep", id="object-10000-deep"),
        pytest.param(_nested(33), "json_too_deep", id="33-levels"),
        pytest.param("{bad", "invalid_json", id="malformed"),
        pytest.param(b"\xff\xfe{", "invalid_json", id="not-utf8"),
    ],
)
def test_json_bodies_get_the_services_400_never_a_500(
    emulator: httpx.Client, manager: SessionManager, django_user_model: Any, body: str | bytes, error: str
) -> None:
    """The service's answers (json_too_deep beyond 32 levels, invalid_json), from the same
    check, on both views that read a body: a RecursionError out of json.loads was a 500."""
    django_user_model.objects.create_user("deb", password="pw-deb-123")
    code, _ = _code(emulator)
    token = _wechat_login(code).json()["token"]
    before = manager.count()
    for path, headers in (
        ("/api/wechat/login", {"X-Session-Transport": "header"}),
        ("/api/wechat/bind", {"Authorization": f"Bearer {token}"}),
    ):
        answer = Client().post(path, body, content_type="application/json", headers=headers)
        assert (answer.status_code, answer.json()["error"]["code"]) == (400, error), (path, answer.content)
        if error == "json_too_deep":
            assert "32" in answer.json()["error"]["message"]
        else:
            assert answer.json()["error"]["message"].startswith("the request body is not valid JSON")
    assert manager.count() == before
    assert Client().get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_32_levels_of_json_are_fine(emulator: httpx.Client, manager: SessionManager) -> None:
    answer = Client().post("/api/wechat/login", _nested(32), content_type="application/json",
                           headers={"X-Session-Transport": "header"})  # fmt: skip
    # past the body check: the code itself is what WeChat refuses
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "wechat_code_invalid")


def test_json_views_answer_401_not_a_redirect(manager: SessionManager) -> None:
    for path in ("/api/auth/me", "/api/sessions"):
        answer = Client().get(path)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "not_authenticated"
    bind = Client().post("/api/wechat/bind", {}, content_type="application/json",
                         headers={"X-Session-Transport": "header"})  # fmt: skip
    assert bind.status_code == 401


def test_my_sessions_list_and_revoke(manager: SessionManager, django_user_model: Any) -> None:
    django_user_model.objects.create_user("bo", password="pw-bo-1234")
    phone, laptop = Client(), Client()
    phone.login(username="bo", password="pw-bo-1234")
    laptop.login(username="bo", password="pw-bo-1234")
    listed = laptop.get("/api/sessions").json()["sessions"]
    assert len(listed) == 2 and sum(s["current"] for s in listed) == 1
    other = next(s["id"] for s in listed if not s["current"])
    assert laptop.delete(f"/api/sessions/{other}").status_code == 204
    assert phone.get("/api/auth/me").status_code == 401
    assert laptop.delete(f"/api/sessions/{other}").status_code == 404
    stranger = Client()
    django_user_model.objects.create_user("cy", password="pw-cy-1234")
    stranger.login(username="cy", password="pw-cy-1234")
    mine = next(s["id"] for s in laptop.get("/api/sessions").json()["sessions"])
    assert stranger.delete(f"/api/sessions/{mine}").status_code == 404
    assert laptop.get("/api/auth/me").status_code == 200
