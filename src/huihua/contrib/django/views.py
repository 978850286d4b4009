"""JSON views: WeChat login and bind, logout, who am I, and "my sessions" (list, revoke).

Answers follow docs/http-api.md: JSON, errors as `{"error": {"code", "message"}}`, and header clients
get their new token in the `token` field (the middleware adds `X-Session-Token`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ...accounts.wechat_login import OpenData, check_idempotency_key
from ...core.errors import HuihuaError
from ...core.record import SessionRecord
from ...json_input import JsonBodyError, parse_json_body
from . import wechat
from .conf import manager
from .middleware import error_response, issue_token, refusal
from .models import WeChatIdentity

V = TypeVar("V", bound=Callable[..., HttpResponse])

IDENTITY_KEY = wechat.IDENTITY_KEY
_CODE = re.compile(r"\A[\x21-\x7e]{1,128}\Z")


def login_required_json(view: V) -> V:
    """Like login_required, but a 401 JSON answer instead of a redirect to a login page."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return error_response(401, "not_authenticated", "log in first")
        return view(request, *args, **kwargs)

    return cast(V, wrapper)


def _body(request: HttpRequest) -> dict[str, Any] | None:
    """The JSON object sent, None for other JSON; JsonBodyError (400 `invalid_json` or
    `json_too_deep`, as the service answers) for a body that is not JSON or nests too deep."""
    body = parse_json_body(request.body or b"{}")
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
        "absolute_expires_at": _iso(timing.absolute_expires_at),
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
    """The service's POST /v1/auth/wechat: the same idempotent exchange and the same errors."""
    try:
        body = _body(request)
    except JsonBodyError as exc:
        return refusal(exc)
    code = body.get("code") if body else None
    if not isinstance(code, str) or not _CODE.match(code):  # as the service's schema checks it
        return error_response(400, "invalid_request", 'send {"code": <the wx.login code>}')
    try:
        wechat.wechat_settings()
        key = check_idempotency_key(request.headers.get("Idempotency-Key"))
        open_data = OpenData.of(body or {})
        flow = wechat.login_flows().exchange(code, idempotency_key=key, open_data=open_data)
        outcome = wechat.perform(request, flow)
    except HuihuaError as exc:
        if exc.status is None:
            raise
        return refusal(exc)
    return _signed_in(request, outcome.member.user, bound=outcome.member.bound)


@require_POST
@login_required_json
def wechat_bind(request: HttpRequest) -> HttpResponse:
    """Tie this session's WeChat identity to an existing account, proven by its (throttled)
    password; the placeholder user is deactivated once merged."""
    try:
        body = _body(request) or {}
    except JsonBodyError as exc:
        return refusal(exc)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        return error_response(400, "invalid_request", 'send {"username", "password"}')
    try:
        flow = wechat.login_flows().bind(wechat.member_of(request.user), username, password)
        outcome = wechat.perform(request, flow)
    except HuihuaError as exc:
        if exc.status is None:
            raise
        return refusal(exc)
    return _signed_in(request, outcome.member.user, bound=True)


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
