"""CORS for the origins named in HUIHUA_CORS_ORIGINS (pure ASGI), so a web front end or an H5
build (uni-app, Taro) on another origin can call the API from its scripts.

Starlette's CORSMiddleware cannot say "credentials for cookie clients only" and answers a
preflight from an unlisted origin itself (400, plain text); this one leaves such requests to the
app untouched. The rule (docs/http-api.md#cors):

- a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) from a listed origin
  is answered here, 204, with the API's methods and request headers, cached by the browser for
  `MAX_AGE` seconds;
- any other request from a listed origin gets `Access-Control-Allow-Origin: <that origin>` and
  `Access-Control-Expose-Headers: X-Session-Token, Retry-After`, so a header client can read its
  rotated token;
- `Access-Control-Allow-Credentials: true` only for a cookie client: a request that is not a
  header client (no `Authorization: Bearer`, no `X-Session-Transport: header`), and a preflight
  whose `Access-Control-Request-Headers` names neither header. A header client's cross-origin
  fetch carries no cookies;
- an unlisted origin, or no `Origin`: no CORS headers at all, the browser keeps its answers from
  the page. With origins configured every response says `Vary: Origin`.

Listed origins are also trusted by the session middleware's CSRF check (Settings.write_origins).
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .middleware import bearer_token

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# what the SDK, the account page and header clients send (the rest are CORS-safelisted)
REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "X-Client-Kind",
    "X-HTTP-Method-Override",
    "X-Session-Transport",
)
EXPOSED_HEADERS = ("X-Session-Token", "Retry-After")
MAX_AGE = 600  # seconds a browser may reuse a preflight answer
_HEADER_CLIENT_HEADERS = frozenset({"authorization", "x-session-transport"})


def is_header_client(headers: Headers) -> bool:
    """The session middleware's transport rule: these requests never use the cookie."""
    return (
        bearer_token(headers.get("authorization")) is not None
        or headers.get("x-session-transport", "").lower() == "header"
    )


class CorsMiddleware:
    def __init__(self, app: ASGIApp, *, origins: tuple[str, ...]) -> None:
        self.app = app
        self.origins = frozenset(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.origins:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        listed = origin is not None and origin in self.origins
        if listed and scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(headers, send)
            return
        credentials = listed and not is_header_client(headers)

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out.append("Vary", "Origin")
                if listed and origin is not None:
                    out["Access-Control-Allow-Origin"] = origin
                    out["Access-Control-Expose-Headers"] = ", ".join(EXPOSED_HEADERS)
                    if credentials:
                        out["Access-Control-Allow-Credentials"] = "true"
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, headers: Headers, send: Send) -> None:
        requested = {h.strip().lower() for h in headers.get("access-control-request-headers", "").split(",")}
        out = [
            ("Access-Control-Allow-Origin", headers["origin"]),
            ("Access-Control-Allow-Methods", ", ".join(METHODS)),
            ("Access-Control-Allow-Headers", ", ".join(REQUEST_HEADERS)),
            ("Access-Control-Max-Age", str(MAX_AGE)),
            ("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
        ]
        if not requested & _HEADER_CLIENT_HEADERS:
            out.append(("Access-Control-Allow-Credentials", "true"))
        await send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in out],
            }
        )
        await send({"type": "http.response.body", "body": b""})
