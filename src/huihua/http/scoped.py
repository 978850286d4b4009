"""huihua inside someone else's app: its middleware and error answers kept to its own routes.

`OnlyUnder` runs a middleware for paths under a prefix and passes every other request straight
on; `install_scoped_error_handlers` answers huihua's `{"error": {"code", "message"}}` for the
generic exceptions (validation, HTTP errors, unexpected ones) only under the prefix, and leaves
the app's own routes to the handlers the app had. huihua's own exceptions (a 401 for a missing
session, a 503 for the store) answer in huihua's format everywhere: the SDK reads them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import install_error_handlers

Handler = Callable[[Request, Exception], Awaitable[Response] | Response]


class OnlyUnder:
    """`wrap(app)` (a middleware around the app) for requests whose path starts with `prefix`
    ("" for all); every other request goes straight to the app."""

    def __init__(self, app: ASGIApp, *, prefix: str, wrap: Callable[[ASGIApp], ASGIApp]) -> None:
        self.app = app
        self.prefix = prefix
        self.wrapped = wrap(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(self.prefix):
            await self.wrapped(scope, receive, send)
        else:
            await self.app(scope, receive, send)


async def _internal_error(_: Request, __: Exception) -> Response:
    return PlainTextResponse("Internal Server Error", status_code=500)  # Starlette's own answer


def _is_huihuas(key: Any) -> bool:
    return isinstance(key, type) and key.__module__.split(".")[0] == "huihua"


def install_scoped_error_handlers(app: FastAPI, prefix: str) -> None:
    previous = dict(app.exception_handlers)
    install_error_handlers(app)
    for key, ours in list(app.exception_handlers.items()):
        if _is_huihuas(key) or ours is previous.get(key):
            continue
        theirs = previous.get(key, _internal_error if key is Exception else None)
        app.exception_handlers[key] = _scoped(prefix, ours, theirs)


def _scoped(prefix: str, ours: Handler, theirs: Handler | None) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        chosen = ours if theirs is None or request.url.path.startswith(prefix) else theirs
        answer = chosen(request, exc)
        return await answer if isinstance(answer, Awaitable) else answer

    return handle
