"""JSON request bodies are checked once, before any route: valid JSON, at most 32 levels deep.

A deeply nested body costs recursion in every layer that walks it (the parser, validation,
serialisation back out) and ends as a generic error or a 500 somewhere; a malformed one
reached the routes as a 422 that blamed a field. Here both get a clear 400 for every route.
The body was already bounded by BodyLimitMiddleware (outside this one), so buffering it is safe.
"""

from __future__ import annotations

import json
from email.message import Message as MimeHeader
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError
from .middleware import _send_json_error as send_json_error

MAX_JSON_DEPTH = 32


def is_json(content_type: str | None) -> bool:
    """Whether FastAPI would parse the body as JSON: no Content-Type, or application/json or
    application/*+json (the same rule as its request handler)."""
    if not content_type:
        return True
    header = MimeHeader()
    header["content-type"] = content_type
    subtype = header.get_content_subtype()
    return header.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


def depth_exceeds(value: Any, limit: int) -> bool:
    """Whether `value` nests objects and arrays more than `limit` levels (without recursion)."""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def body_problem(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> ApiError | None:
    too_deep = ApiError(400, "json_too_deep", f"JSON bodies may nest at most {max_depth} levels")
    try:
        value = json.loads(body)
    except RecursionError:
        return too_deep
    except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8/16/32
        return ApiError(400, "invalid_json", f"the request body is not valid JSON: {exc}")
    return too_deep if depth_exceeds(value, max_depth) else None


class JsonBodyMiddleware:
    def __init__(self, app: ASGIApp, *, max_depth: int = MAX_JSON_DEPTH) -> None:
        self.app = app
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope) if scope["type"] == "http" else None
        if headers is None or not _has_body(headers) or not is_json(headers.get("content-type")):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        try:
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    await self.app(scope, _replay([message], receive), send)  # the client left
                    return
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
        except ApiError as exc:  # over the size limit, found while streaming
            await send_json_error(send, exc.status, exc.code, exc.message)
            return
        body = b"".join(chunks)
        if body and (problem := body_problem(body, self.max_depth)):
            await send_json_error(send, problem.status, problem.code, problem.message)
            return
        replayed: Message = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, _replay([replayed], receive), send)


def _has_body(headers: Headers) -> bool:
    return headers.get("content-length", "0") != "0" or "transfer-encoding" in headers


def _replay(messages: list[Message], receive: Receive) -> Receive:
    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return replay
