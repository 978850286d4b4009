"""JSON twins of huihua's GET /v1/auth/me, PATCH /v1/session/data {incr} and POST /v1/auth/login,
written the way the Django docs teach (request.user, request.session, authenticate + login)."""

import json

from django.contrib.auth import authenticate, login
from django.http import HttpRequest, HttpResponse, JsonResponse


def _user(user) -> dict:  # type: ignore[no-untyped-def]
    return {
        "id": str(user.pk),
        "username": user.username,
        "email": user.email or None,
        "phone": None,
        "created_at": user.date_joined.isoformat(),
    }


def _session(request: HttpRequest) -> dict:
    expires = request.session.get_expiry_date().isoformat()
    return {"id": None, "client": "browser", "created_at": None, "last_seen_at": None,
            "idle_expires_at": expires, "expires_at": expires}  # fmt: skip


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def me(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return _error(405, "method_not_allowed", "GET only")
    if not request.user.is_authenticated:
        return _error(401, "not_authenticated", "log in first")
    return JsonResponse({"user": _user(request.user), "session": _session(request)})


def session_data(request: HttpRequest) -> HttpResponse:
    """incr, Django style: read the whole session, change it, write the whole blob back."""
    if request.method != "PATCH":
        return _error(405, "method_not_allowed", "PATCH only")
    try:
        body = json.loads(request.body or b"{}")
        incr = body.get("incr") or {}
        for key, by in incr.items():
            request.session[key] = int(request.session.get(key, 0)) + int(by)
    except (ValueError, TypeError, AttributeError):
        return _error(400, "invalid_request", "expected {incr: {key: n}}")
    data = {k: v for k, v in request.session.items() if not k.startswith("_")}
    return JsonResponse({"data": data})


def login_view(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _error(405, "method_not_allowed", "POST only")
    try:
        body = json.loads(request.body or b"{}")
        username, password = str(body["username"]), str(body["password"])
    except (ValueError, KeyError, TypeError):
        return _error(422, "invalid_request", "expected {username, password}")
    user = authenticate(request, username=username, password=password)
    if user is None:
        return _error(401, "invalid_credentials", "the username or password is wrong")
    login(request, user)  # cycles the session key, updates last_login
    return JsonResponse({"user": _user(user), "session": _session(request)})
