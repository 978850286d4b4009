"""The error model of the API: an HTTP status and `{"error": {"code", "message"}}`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from ..accounts.wechat_login import WeChatLoginError
from ..core.errors import (
    SessionDataError,
    SessionDataTooLarge,
    SessionGone,
    SessionInvalid,
    StoreFull,
    StoreUnavailable,
)

logger = logging.getLogger("huihua.http")


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


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


def install_error_handlers(app: FastAPI) -> None:
    async def api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    async def session_invalid(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, SessionInvalid)
        return error_response(401, exc.code, str(exc))

    async def session_gone(_: Request, exc: Exception) -> Response:
        return error_response(401, "session_revoked", str(exc))

    async def store_unavailable(_: Request, exc: Exception) -> Response:
        logger.warning("store unavailable: %s", exc)
        return error_response(
            503, "store_unavailable", "the session store is unavailable; retry shortly", {"Retry-After": "1"}
        )

    async def store_full(_: Request, exc: Exception) -> Response:
        logger.error("store full: %s", exc)
        return error_response(
            507, "store_full", "the session store has no space left; free disk space on its server"
        )

    async def data_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, SessionDataError)
        status = 413 if isinstance(exc, SessionDataTooLarge) else 400
        return error_response(status, exc.code, str(exc))

    async def validation(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
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
        return error_response(500, "internal_error", "an unexpected error; it has been logged")

    async def wechat_login_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, WeChatLoginError)
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(WeChatLoginError, wechat_login_error)
    app.add_exception_handler(SessionInvalid, session_invalid)
    app.add_exception_handler(SessionGone, session_gone)
    app.add_exception_handler(StoreUnavailable, store_unavailable)
    app.add_exception_handler(StoreFull, store_full)  # the subclass: Starlette picks the closest
    app.add_exception_handler(SessionDataError, data_error)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
