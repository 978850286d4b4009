"""The error model of the API: an HTTP status and `{"error": {"code", "message"}}`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from ..core.errors import HuihuaError, Refused, StoreFull, StoreUnavailable, answer

logger = logging.getLogger("huihua.http")


class ApiError(Refused):
    """The web layer's own refusals (a 404, a body over the limit, a wrong service key); the
    domain's errors carry their answer themselves (`core/errors.py`)."""


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=dict(headers or {}))


_STATUS_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def _sent_json(content_type: str | None) -> bool:
    from .json_body import is_json  # json_body imports this module

    return is_json(content_type)


def _not_json_message(request: Request) -> str:
    sent = request.headers.get("content-type", "")[:100]
    return (
        "send the body as JSON with the header Content-Type: application/json "
        f"(this request said Content-Type: {sent})"
    )


def install_error_handlers(app: FastAPI) -> None:
    async def domain_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HuihuaError)
        if isinstance(exc, StoreFull):
            logger.error("store full: %s", exc)
        elif isinstance(exc, StoreUnavailable):
            logger.warning("store unavailable: %s", exc)
        elif exc.status is None:  # not an answer to a client: a bug, an untranslated WeChatError
            logger.exception("unhandled error", exc_info=exc)
        return error_response(*answer(exc))

    async def validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        if tuple(first.get("loc", ())) == ("body",) and not _sent_json(request.headers.get("content-type")):
            return error_response(415, "unsupported_media_type", _not_json_message(request))
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = (
            f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg", "invalid request"))
        )
        return error_response(422, "invalid_request", message)

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), exc.headers)

    async def unexpected(_: Request, exc: Exception) -> Response:
        logger.exception("unhandled error", exc_info=exc)
        return error_response(*answer(exc))

    app.add_exception_handler(HuihuaError, domain_error)  # every domain error, ApiError too
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
