"""Session middleware for browsers and mini programs: it replaces Django's SessionMiddleware.

A request is a *header client* when it sends `Authorization: Bearer <token>` or
`X-Session-Transport: header` (docs/http-api.md#transports). Its session comes from the header
only (cookies are not read); a new or rotated token goes back in `X-Session-Token` (an empty
one when the session ended), and the response never sets a cookie. Header clients are exempt
from CSRF: a cross-site page cannot add those headers without a CORS preflight, and no cookie
authenticates them.

Every other request is a browser: the token travels in Django's session cookie with Django's
settings, and CsrfViewMiddleware keeps guarding cookie-authenticated writes.

Responses that touched a session carry `Cache-Control: no-store` and `Vary: Cookie, Authorization`.
A domain error answers as the service does (`core.errors.answer`): a store outage 503 (never
"logged out"), session data over the cap 413.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase, UpdateError
from django.contrib.sessions.exceptions import SessionInterrupted
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.deprecation import MiddlewareMixin
from django.utils.http import http_date

from ...core.errors import HuihuaError, answer
from ...core.policy import client_kind

TOKEN_HEADER = "X-Session-Token"  # noqa: S105 - a header name, not a secret
HEADER = "header"
BROWSER = "browser"
MINIPROGRAM = "miniprogram"
PRESENTED = _PRESENTED = "_huihua_presented_token"  # the token the request came with


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JsonResponse:
    response = JsonResponse({"error": {"code": code, "message": message}}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def refusal(exc: HuihuaError) -> JsonResponse:
    """The API's answer to a domain error (`core.errors.answer`), as the service gives it."""
    return error_response(*answer(exc))


def transport_of(request: HttpRequest) -> tuple[str, str | None]:
    """("header", bearer token or None) or ("browser", cookie value or None)."""
    authorization = request.headers.get("Authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return HEADER, credentials.strip() or None
    if request.headers.get("X-Session-Transport", "").strip().lower() == HEADER:
        return HEADER, None
    return BROWSER, request.COOKIES.get(settings.SESSION_COOKIE_NAME)


def is_header_client(request: HttpRequest) -> bool:
    return getattr(request, "session_transport", None) == HEADER


def issue_token(request: HttpRequest) -> str | None:
    """For JSON views: save now (a login's rotation happens in the save) and return the token a
    header client must keep; None for browsers, whose token stays in the HttpOnly cookie."""
    session: SessionBase = request.session
    try:
        session.save()
    except UpdateError as exc:
        raise SessionInterrupted("the session ended in a concurrent request") from exc
    token: str | None = session.session_key
    return token if is_header_client(request) else None


class SessionMiddleware(MiddlewareMixin):
    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        super().__init__(get_response)
        self.SessionStore = import_module(settings.SESSION_ENGINE).SessionStore

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        transport, token = transport_of(request)
        kind, wrong = client_kind(request.headers.get("X-Client-Kind"), header_transport=transport == HEADER)
        if wrong is not None:
            return JsonResponse({"error": {"code": "invalid_client_kind", "message": wrong}}, status=400)
        session = self.SessionStore(token)
        if hasattr(session, "client"):  # huihua's store records who is on the other end
            session.client = kind
            session.ip = request.META.get("REMOTE_ADDR")
            session.user_agent = (request.headers.get("User-Agent") or "")[:512] or None
        request.session = session
        request.session_transport = transport  # type: ignore[attr-defined]
        setattr(request, _PRESENTED, token)
        if transport == HEADER:
            request._dont_enforce_csrf_checks = True  # type: ignore[attr-defined]
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        return self._failure(exception)

    @staticmethod
    def _failure(exception: Exception) -> HttpResponse | None:
        if isinstance(exception, HuihuaError) and exception.status is not None:
            return refusal(exception)
        return None  # Django's own handling: a 500, logged

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        try:
            session: SessionBase = request.session
            accessed = session.accessed
        except AttributeError:
            return response
        try:
            if is_header_client(request):
                self._header_response(request, session, response)
            else:
                self._cookie_response(request, session, response)
        except HuihuaError as exc:  # the store failed, the data is over the cap
            if exc.status is None:
                raise
            response = refusal(exc)
        sent = TOKEN_HEADER in response or settings.SESSION_COOKIE_NAME in response.cookies
        if accessed or session.modified or sent:
            patch_vary_headers(response, ("Cookie", "Authorization"))
            patch_cache_control(response, no_store=True)
        return response

    @staticmethod
    def _save(session: SessionBase, response: HttpResponseBase) -> bool:
        """Save as Django does: not on 5xx; UpdateError becomes SessionInterrupted (400)."""
        if response.status_code >= 500:
            return False
        try:
            session.save()
        except UpdateError as exc:
            raise SessionInterrupted(
                "The request's session was deleted before the request completed. The user may "
                "have logged out in a concurrent request, for example."
            ) from exc
        return True

    def _header_response(
        self, request: HttpRequest, session: SessionBase, response: HttpResponseBase
    ) -> None:
        presented = getattr(request, _PRESENTED)
        if session.is_empty():
            if presented is not None:  # logged out, expired or unknown: the client drops it
                response[TOKEN_HEADER] = ""
        elif (
            (session.modified or settings.SESSION_SAVE_EVERY_REQUEST)
            and self._save(session, response)
            and session.session_key != presented
        ):
            response[TOKEN_HEADER] = session.session_key or ""
        # Never a cookie for a header client (CSRF's included).
        for name in list(response.cookies):
            del response.cookies[name]

    def _cookie_response(
        self, request: HttpRequest, session: SessionBase, response: HttpResponseBase
    ) -> None:
        """Django's SessionMiddleware.process_response, with max-age read after the save (a
        login rotates the token inside save())."""
        if settings.SESSION_COOKIE_NAME in request.COOKIES and session.is_empty():
            response.delete_cookie(
                settings.SESSION_COOKIE_NAME,
                path=settings.SESSION_COOKIE_PATH,
                domain=settings.SESSION_COOKIE_DOMAIN,
                samesite=settings.SESSION_COOKIE_SAMESITE,
            )
            return
        if not (session.modified or settings.SESSION_SAVE_EVERY_REQUEST) or session.is_empty():
            return
        if not self._save(session, response):
            return
        if session.get_expire_at_browser_close():
            max_age = None
            expires = None
        else:
            max_age = session.get_expiry_age()
            expires = http_date(time.time() + max_age)
        response.set_cookie(
            settings.SESSION_COOKIE_NAME,
            session.session_key or "",
            max_age=max_age,
            expires=expires,
            domain=settings.SESSION_COOKIE_DOMAIN,
            path=settings.SESSION_COOKIE_PATH,
            secure=bool(settings.SESSION_COOKIE_SECURE),
            httponly=bool(settings.SESSION_COOKIE_HTTPONLY),
            samesite=settings.SESSION_COOKIE_SAMESITE,
        )
