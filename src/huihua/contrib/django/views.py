"""JSON views: WeChat login and bind, logout, who am I, and "my sessions" (list, revoke).

Answers follow DESIGN §5: JSON, errors as `{"error": {"code", "message"}}`, and header clients
get their new token in the `token` field (the middleware adds `X-Session-Token`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ...core.record import SessionRecord
from ...wechat.errors import WeChatError, WeChatUnavailable
from . import wechat
from .conf import manager
from .middleware import error_response, issue_token
from .models import WeChatIdentity

V = TypeVar("V", bound=Callable[..., HttpResponse])

IDENTITY_KEY = "_huihua_wechat_identity"  # the WeChatIdentity pk this session logged in with


def login_required_json(view: V) -> V:
    """Like login_required, but a 401 JSON answer instead of a redirect to a login page."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return error_response(401, "not_authenticated", "log in first")
        return view(request, *args, **kwargs)

    return cast(V, wrapper)


def _body(request: HttpRequest) -> dict[str, Any] | None:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def _session_json(record: SessionRecord | None, *, current: str | None = None) -> dict[str, Any]:
    if record is None:
        return {}
    timing = record.timing
    return {
        "id": record.id,
        "client": record.client,
        "ip": record.ip,
        "user_agent": record.user_agent,
        "created_at": _iso(record.created_at),
        "last_seen_at": _iso(timing.last_seen_at),
        "idle_expires_at": _iso(timing.idle_expires_at),
        "expires_at": _iso(record.expires_at),
        "current": record.id == current,
    }


def _user_json(user: Any) -> dict[str, Any]:
    return {"id": str(user.pk), "username": user.get_username()}


def _signed_in(request: HttpRequest, user: Any, *, bound: bool) -> JsonResponse:
    token = issue_token(request)  # saves: the token below is the one that now works
    record = getattr(request.session, "record", None)
    body: dict[str, Any] = {
        "user": _user_json(user),
        "session": _session_json(record, current=record.id if record else None),
        "bound": bound,
    }
    if token is not None:
        body["token"] = token
    return JsonResponse(body)


@require_POST
def wechat_login(request: HttpRequest) -> HttpResponse:
    body = _body(request)
    code = body.get("code") if body else None
    if not isinstance(code, str) or not code:
        return error_response(400, "invalid_request", 'send {"code": <the wx.login code>}')
    try:
        appid = wechat.wechat_settings()[0]
        result = wechat.client().code2session(code)
    except LookupError as exc:
        return error_response(503, "wechat_unconfigured", str(exc))
    except WeChatUnavailable as exc:
        return error_response(503, exc.code, str(exc))
    except WeChatError as exc:
        return error_response(400, exc.code, str(exc))
    identity = wechat.identity_for(appid, result.openid, result.session_key, result.unionid)
    login(request, identity.user, backend="django.contrib.auth.backends.ModelBackend")
    request.session[IDENTITY_KEY] = identity.pk
    return _signed_in(request, identity.user, bound=identity.bound)


@require_POST
@login_required_json
def wechat_bind(request: HttpRequest) -> HttpResponse:
    """Tie this session's WeChat identity to an existing account, proven by its password."""
    identity = WeChatIdentity.objects.filter(pk=request.session.get(IDENTITY_KEY)).first()
    if identity is None or identity.user_id != request.user.pk:  # type: ignore[attr-defined]
        return error_response(403, "not_a_wechat_session", "log in with WeChat first")
    body = _body(request) or {}
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        return error_response(400, "invalid_request", 'send {"username", "password"}')
    user = authenticate(request, username=username, password=password)
    if user is None:
        return error_response(401, "invalid_credentials", "wrong username or password")
    identity.user = user
    identity.bound = True
    identity.save(update_fields=["user", "bound", "updated_at"])
    login(request, user)  # another user: Django flushes, and the session gets a new token
    request.session[IDENTITY_KEY] = identity.pk
    return _signed_in(request, user, bound=True)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return HttpResponse(status=204)


@require_GET
@login_required_json
def me(request: HttpRequest) -> HttpResponse:
    record = getattr(request.session, "record", None)
    identity = WeChatIdentity.objects.filter(pk=request.session.get(IDENTITY_KEY)).first()
    return JsonResponse({
        "user": _user_json(request.user),
        "session": _session_json(record, current=record.id if record else None),
        "bound": bool(identity and identity.bound),
    })  # fmt: skip


@require_GET
@login_required_json
def sessions(request: HttpRequest) -> HttpResponse:
    record = getattr(request.session, "record", None)
    current = record.id if record else None
    listed = manager().list_user(str(request.user.pk))
    return JsonResponse({"sessions": [_session_json(s.record, current=current) for s in listed]})


@require_http_methods(["DELETE", "POST"])
@login_required_json
def revoke_session(request: HttpRequest, session_id: str) -> HttpResponse:
    if not manager().revoke_id(str(request.user.pk), session_id):
        return error_response(404, "session_not_found", "no such session of yours")
    return HttpResponse(status=204)
