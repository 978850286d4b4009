"""The service's `/v1` API on Django: the same routes, JSON shapes and error codes as
`huihua serve` (src/huihua/http/routes), so the mini-program SDK works unchanged against either.

Mount it with `path("", include("huihua.contrib.django.v1_urls"))`. Bodies are checked with the
service's own request models (a 422 `invalid_request` naming the first bad field), domain errors
answer through `core.errors.answer`, and an unknown `/v1/...` path or method is a JSON 404 / 405.

Two Django-specific points: users are Django's (`id` is the primary key as a string, `email`
Django's, `phone` the one stored from `/v1/auth/wechat/phone`), and `/v1/session/data` shows and
changes only keys that do not start with `_` (those are Django's own: the logged-in user, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from pydantic import BaseModel, ValidationError

from ...accounts.wechat_login import OpenData, check_idempotency_key
from ...core.data import DataChanges
from ...core.errors import HuihuaError, SessionDataError, SessionUnknown
from ...core.record import SessionRecord
from ...core.session import Session
from ...http.routes.wechat import BindIn, PhoneIn, WeChatLoginIn
from ...http.schemas import DataPatchIn
from ...json_input import JsonBodyError, parse_json_body
from ...session_shapes import session_item, session_out
from . import wechat
from .conf import manager
from .middleware import PRESENTED, error_response, issue_token, refusal
from .models import WeChatIdentity

V = TypeVar("V", bound=Callable[..., HttpResponse])
M = TypeVar("M", bound=BaseModel)

OVERRIDABLE = frozenset({"PATCH", "PUT", "DELETE"})  # as the service's MethodOverrideMiddleware


def method_of(request: HttpRequest) -> str:
    """The method, with `POST` + `X-HTTP-Method-Override: PATCH|PUT|DELETE` served as that method."""
    method = request.method or "GET"
    if method == "POST":
        wanted = request.headers.get("X-HTTP-Method-Override", "").strip().upper()
        if wanted in OVERRIDABLE:
            return wanted
    return method


def allow(*methods: str) -> Callable[[V], V]:
    """Like require_http_methods, with the service's JSON 405 and the method override."""

    def decorate(view: V) -> V:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if method_of(request) not in methods:
                return error_response(
                    405, "method_not_allowed", "Method Not Allowed", {"Allow": ", ".join(methods)}
                )
            try:
                return view(request, *args, **kwargs)
            except JsonBodyError as exc:
                return refusal(exc)
            except _Invalid as exc:
                return error_response(422, "invalid_request", str(exc))
            except HuihuaError as exc:
                if exc.status is None:
                    raise
                return refusal(exc)

        return cast(V, wrapper)

    return decorate


class _Invalid(Exception):
    pass


def _body(request: HttpRequest, model: type[M]) -> M:
    """The body checked by the service's model; `_Invalid` words the first error as the service."""
    raw = parse_json_body(request.body) if request.body else None  # none: the service's 422
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first: dict[str, Any] = dict(exc.errors()[0]) if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        msg = str(first.get("msg", "invalid request"))
        raise _Invalid(f"{where}: {msg}" if where else msg) from exc


def _iso(value: datetime | float | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat()
    return datetime.fromtimestamp(value, UTC).isoformat()


def user_out(user: Any) -> dict[str, Any]:
    """The service's `User.public()` for a Django user."""
    phone = WeChatIdentity.objects.filter(user=user).exclude(phone="").values_list("phone", flat=True).first()
    username = user.get_username()
    if not user.has_usable_password() and wechat.is_placeholder_name(username):
        username = None  # a WeChat-only user has no username on the service either
    return {
        "id": str(user.pk),
        "username": username,
        "email": getattr(user, "email", None) or None,
        "phone": phone or None,
        "created_at": _iso(getattr(user, "date_joined", None)),
    }


def _record(request: HttpRequest) -> SessionRecord | None:
    return getattr(request.session, "record", None)


def _with_token(request: HttpRequest, body: dict[str, Any]) -> JsonResponse:
    token = issue_token(request)  # saves: a login's rotation happens in the save
    if token is not None:
        body["token"] = token
    return JsonResponse(body)


def _auth_answer(request: HttpRequest, user: Any, **extra: Any) -> JsonResponse:
    issue_token(request)  # the record below is the saved one
    record = _record(request)
    assert record is not None
    return _with_token(request, {"user": user_out(user), "session": session_out(record), **extra})


def _require_user(request: HttpRequest) -> None:
    """The service's `signed_in`: 401 `not_authenticated` without a logged-in user."""
    if request.user.is_authenticated:
        return
    presented = getattr(request, PRESENTED)
    if presented and _record(request) is None:  # say why, as the service does: expired, revoked
        manager().load(presented, touch=False)  # SessionUnknown / SessionExpired / SessionRevoked
    raise SessionUnknown("log in first: this request carries no session of a user")


@allow("POST")
def wechat_login(request: HttpRequest) -> HttpResponse:
    """POST /v1/auth/wechat: the idempotent code exchange; `bound` tells whether the WeChat user is
    tied to a password account."""
    body = _body(request, WeChatLoginIn)
    wechat.wechat_settings()
    key = check_idempotency_key(request.headers.get("Idempotency-Key"))
    open_data = OpenData.of(body.model_dump(exclude={"code"}))
    flow = wechat.login_flows().exchange(body.code, idempotency_key=key, open_data=open_data)
    outcome = wechat.perform(request, flow)
    return _auth_answer(request, outcome.member.user, bound=outcome.member.bound)


@allow("POST")
def wechat_bind(request: HttpRequest) -> HttpResponse:
    """POST /v1/auth/wechat/bind: tie this WeChat session to an existing account."""
    body = _body(request, BindIn)
    wechat.wechat_settings()
    _require_user(request)
    flow = wechat.login_flows().bind(wechat.member_of(request.user), body.username, body.password)
    outcome = wechat.perform(request, flow)
    return _auth_answer(request, outcome.member.user)


@allow("POST")
def wechat_phone(request: HttpRequest) -> HttpResponse:
    """POST /v1/auth/wechat/phone: store the phone number behind a getPhoneNumber code."""
    body = _body(request, PhoneIn)
    wechat.wechat_settings()
    _require_user(request)
    member = wechat.member_of(request.user)
    phone = wechat.perform(request, wechat.login_flows().phone_number(member, body.code))
    WeChatIdentity.objects.filter(user=request.user).update(phone=phone)
    return JsonResponse({"user": user_out(request.user)})


@allow("GET")
def me(request: HttpRequest) -> HttpResponse:
    _require_user(request)
    record = _record(request)
    assert record is not None
    return JsonResponse({"user": user_out(request.user), "session": session_out(record)})


@allow("POST")
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)  # ends the stored session; a header client is handed an empty token
    return HttpResponse(status=204)


@allow("GET")
def sessions(request: HttpRequest) -> HttpResponse:
    _require_user(request)
    record = _record(request)
    current = record.id if record else None
    listed = manager().list_user(str(request.user.pk))
    return JsonResponse({"sessions": [session_item(s.record, current) for s in listed]})


@allow("DELETE")
def revoke_session(request: HttpRequest, session_id: str) -> HttpResponse:
    _require_user(request)
    if len(session_id) > 64 or not manager().revoke_id(str(request.user.pk), session_id):
        return error_response(404, "session_not_found", "no live session of yours has this id")
    record = _record(request)
    if record is not None and record.id == session_id:
        logout(request)  # this one ended: forget it (a header client gets an empty token)
    return HttpResponse(status=204)


def _visible(data: Any) -> dict[str, Any]:
    return {k: v for k, v in dict(data).items() if not k.startswith("_")}


@allow("GET", "PATCH")
def session_data(request: HttpRequest) -> HttpResponse:
    """GET: the session's data (`{}` for a visitor, and no session is made). PATCH: set / unset /
    incr applied atomically by the store; a visitor gets an anonymous session."""
    if method_of(request) == "GET":
        return JsonResponse({"data": _visible(request.session.items())})
    patch = _body(request, DataPatchIn)
    changes = DataChanges(
        set=patch.set or {}, unset=frozenset(patch.unset or ()), incr=patch.incr or {}
    ).validate()
    if any(k.startswith("_") for k in (*changes.set, *changes.unset, *changes.incr)):
        raise SessionDataError("keys starting with _ belong to Django; pick another name")
    store = request.session
    store.items()  # loads the session behind the token, if any
    token = issue_token(request) if _record(request) is None else None  # a visitor's first write
    record = _record(request)
    assert record is not None
    data = store._get_session()  # type: ignore[attr-defined]  # Django's session cache
    if changes:
        updated = manager().update(Session(record), set=changes.set, unset=changes.unset, incr=changes.incr)
        store._saved(updated.record, data)  # type: ignore[attr-defined]  # what the store holds now
    body: dict[str, Any] = {"data": _visible(data)}
    if token is not None:  # a header client's new token, in the body too (as the service)
        body["token"] = token
    return JsonResponse(body)


@allow("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    return error_response(404, "not_found", "Not Found")
