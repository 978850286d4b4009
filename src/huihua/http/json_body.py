"""JSON request bodies are checked once, before any route: valid JSON, at most 32 levels deep.

A deeply nested body costs recursion in every layer that walks it (the parser, validation,
serialisation back out) and ends as a generic error or a 500 somewhere; a malformed one
reached the routes as a 422 that blamed a field. Here both get a clear 400 for every route.
The body was already bounded by BodyLimitMiddleware (outside this one), so buffering it is safe.
The check itself is huihua.json_input's, shared with the Django views.
"""

from __future__ import annotations

from email.message import Message as MimeHeader

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..json_input import MAX_JSON_DEPTH, JsonBodyError, parse_json_body
from .errors import ApiError
from .middleware import _send_json_error as send_json_error


def is_json(content_type: str | None) -> bool:
    """Whether FastAPI would parse the body as JSON: no Content-Type, or application/json or
    application/*+json (the same rule as its request handler)."""
    if not content_type:
        return True
    header = MimeHeader()
    header["content-type"] = content_type
    subtype = header.get_content_subtype()
    return header.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


def body_problem(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> JsonBodyError | None:
    """The 400 for a body that is not JSON or nests too deep, None for a good one."""
    try:
        parse_json_body(body, max_depth)
    except JsonBodyError as exc:
        return exc
    return None


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
