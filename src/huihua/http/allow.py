"""`Allow` on every 405: all the methods the path has, not only those of its first route.

Starlette's router answers 405 from the first route whose path matches, with that route's
methods in `Allow`; where one path has several routes (GET and PATCH /v1/session/data), the
header then misses methods the path has. Here a 405 is answered by the app's HTTPException
handler as before, with `Allow` listing the methods of every route that matches the path.
"""

from __future__ import annotations

from collections.abc import Awaitable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(app: Any, scope: MutableMapping[str, Any]) -> list[str]:
    """The methods some route of the app fully matches for this path (asked route by route
    through the public `matches`, so routers included in any way are asked too)."""
    routes = getattr(app, "routes", ())
    return [m for m in _METHODS if any(r.matches({**scope, "method": m})[0] == Match.FULL for r in routes)]


def install_allow_on_405(app: FastAPI) -> None:
    """Wrap the handler a 405 has now (its own, or the HTTPException one) to set `Allow`."""
    inner = app.exception_handlers.get(405) or app.exception_handlers[HTTPException]

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        answer = inner(request, exc)
        response: Response = await answer if isinstance(answer, Awaitable) else answer
        methods = allowed_methods(request.app, request.scope)
        if methods:
            response.headers["Allow"] = ", ".join(methods)
        return response

    app.add_exception_handler(405, method_not_allowed)
