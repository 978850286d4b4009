"""Pure-ASGI session middleware: picks the transport, guards cookie writes against CSRF, and
writes cookies or token headers only when the response starts (Starlette's session idea).

Transport rule (docs/http-api.md#transports): `Authorization: Bearer` or `X-Session-Transport: header` makes a
header client, and then cookies are ignored entirely; every other request is a browser client,
whose token is read only from the cookie named for its scheme (`__Host-sid` on HTTPS, `sid` on
plain HTTP). Tokens in query strings are never read. When a request carries the session cookie
twice, the first one counts. A header client may say what it is (`X-Client-Kind`,
core/policy.py `client_kind`); it is a mini program when it does not.
"""

from __future__ import annotations

import json
from collections.abc import Callable, MutableMapping
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import Settings
from ..core.async_manager import AsyncSessionManager
from ..core.policy import client_kind
from .context import SessionContext, Transport, UserLookup
from .errors import ApiError, error_body

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CONTEXT_KEY = "huihua.session"


def cookie_name(secure: bool) -> str:
    return "__Host-sid" if secure else "sid"


def first_cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"')
    return None


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def same_origin_allowed(method: str, headers: Headers, own_origin: str, allowed: tuple[str, ...]) -> bool:
    """Cross-origin protection for cookie-authenticated writes, after Go's CrossOriginProtection:
    Sec-Fetch-Site when the browser sends it, else Origin against our origin and the allowlist.
    A request with neither header does not come from a browser and cannot carry a forged cookie
    write, so it passes."""
    if method in SAFE_METHODS:
        return True
    origin = headers.get("origin")
    if origin is not None and origin.rstrip("/") in allowed:
        return True
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    return origin is None or origin.rstrip("/") == own_origin


def csrf_message(origin: str | None) -> str:
    """What to do about a refused cross-site cookie write."""
    page = f"the page's origin ({origin[:200]})" if origin else "the page's origin"
    return (
        f"cross-site request refused: cookie-authenticated writes must come from an allowed origin; "
        f"list {page} in HUIHUA_ALLOWED_ORIGINS (or HUIHUA_CORS_ORIGINS, which also allows CORS), "
        "or use the header transport (X-Session-Transport: header, then Authorization: Bearer)"
    )


def client_ip(scope: Scope) -> str | None:
    """The peer, or the client a trusted proxy forwarded for (TrustedProxyMiddleware set it)."""
    client = scope.get("client")
    return str(client[0])[:64] if client else None


async def _send_json_error(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps(error_body(code, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SessionMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        manager: Callable[[], AsyncSessionManager],
        settings: Settings,
        users: UserLookup | None = None,
    ) -> None:
        self.app = app
        self.manager = manager
        self.settings = settings
        self.users = users

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        secure = (
            self.settings.cookie_secure
            if self.settings.cookie_secure is not None
            else (scope.get("scheme") == "https")
        )
        name = cookie_name(secure)
        bearer = bearer_token(headers.get("authorization"))
        header_transport = bearer is not None or headers.get("x-session-transport", "").lower() == "header"
        client, refusal = client_kind(headers.get("x-client-kind"), header_transport=header_transport)
        if refusal is not None:
            await _send_json_error(send, 400, "invalid_client_kind", refusal)
            return
        if header_transport:
            transport, token = Transport.HEADER, bearer
        else:
            transport = Transport.COOKIE
            token = first_cookie(headers.get("cookie", ""), name)
            own_origin = (
                f"{'https' if scope.get('scheme') == 'https' else 'http'}://{headers.get('host', '')}"
            )
            if not same_origin_allowed(scope["method"], headers, own_origin, self.settings.write_origins):
                await _send_json_error(send, 403, "csrf_failed", csrf_message(headers.get("origin")))
                return
        ctx = SessionContext(
            manager=self.manager(),
            transport=transport,
            token=token,
            client=client,
            ip=client_ip(scope),
            user_agent=(headers.get("user-agent") or "")[:512] or None,
            users=self.users,
        )
        scope[CONTEXT_KEY] = ctx
        cookie_sent = token is not None and transport is Transport.COOKIE

        async def send_with_session(message: Message) -> None:
            if message["type"] == "http.response.start" and ctx.touched:
                out = MutableHeaders(scope=message)
                out["Cache-Control"] = "no-store"
                out.append("Vary", "Cookie, Authorization")
                if ctx.issued is not None and ctx.issued.token:
                    if transport is Transport.HEADER:
                        out["X-Session-Token"] = ctx.issued.token
                    else:
                        out.append("Set-Cookie", _cookie(name, ctx.issued.token, secure, _max_age(ctx)))
                elif transport is Transport.COOKIE and cookie_sent and (ctx.ended or ctx.invalid):
                    out.append("Set-Cookie", _cookie(name, "", secure, 0))
            await send(message)

        await self.app(scope, receive, send_with_session)


def _max_age(ctx: SessionContext) -> int | None:
    session = ctx.issued
    if session is None or not session.persistent:
        return None  # a browser-session cookie: gone when the browser closes
    return max(0, int(session.record.timing.absolute_expires_at - ctx.manager.clock.now()))


def _cookie(name: str, value: str, secure: bool, max_age: int | None) -> str:
    parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
    if secure:
        parts.append("Secure")
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts)


class BodyLimitMiddleware:
    """Refuse request bodies over the limit with 413 before the route sees them."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _send_json_error(
                send, 413, "payload_too_large", f"request bodies are at most {self.max_bytes} bytes"
            )
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise ApiError(413, "payload_too_large", f"request bodies are at most {self.max_bytes} bytes")
            return message

        await self.app(scope, limited, send)


def context_of(scope: MutableMapping[str, Any]) -> SessionContext:
    ctx: SessionContext = scope[CONTEXT_KEY]
    return ctx


class MethodOverrideMiddleware:
    """`POST` with `X-HTTP-Method-Override: PATCH|PUT|DELETE` is served as that method.

    WeChat's `wx.request` cannot send PATCH ("request:fail method invalid"), and some proxies
    drop it. Only POST is overridden, and only into methods that are no safer, so the CSRF rule
    for cookie writes still applies to the overridden request.
    """

    ALLOWED = frozenset({"PATCH", "PUT", "DELETE"})

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            wanted = Headers(scope=scope).get("x-http-method-override", "").strip().upper()
            if wanted in self.ALLOWED:
                scope = {**scope, "method": wanted}
        await self.app(scope, receive, send)
