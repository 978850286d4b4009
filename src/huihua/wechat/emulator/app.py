"""The emulator over HTTP: WeChat's endpoints as WeChat answers them, and the /_emulator/ control API."""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .state import ControlError, Emulator, Failure

Handler = Callable[[str, dict[str, str], Any], dict[str, Any]]
_NOT_JSON = object()


def _rid() -> str:
    return "-".join(secrets.token_hex(4) for _ in range(3))


def _api_routes(emu: Emulator) -> dict[str, Handler]:
    return {
        "/sns/jscode2session": emu.jscode2session,
        "/cgi-bin/token": emu.token,
        "/cgi-bin/stable_token": emu.stable_token,
        "/wxa/checksession": emu.checksession,
        "/wxa/resetusersessionkey": emu.resetusersessionkey,
        "/wxa/business/getuserphonenumber": emu.getuserphonenumber,
        "/wxa/getpaidunionid": emu.getpaidunionid,
    }


def _api_endpoint(emu: Emulator, path: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        query = dict(request.query_params)
        raw = await request.body()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = _NOT_JSON
        logged = query | body if isinstance(body, dict) else dict(query)
        fault = emu.take_fault(path)
        if fault is not None and fault.latency_ms:
            await anyio.sleep(fault.latency_ms / 1000)
        if fault is not None and fault.http_status is not None and fault.errcode is None:
            emu.record(path, logged, -1)
            return Response(b"upstream failure", status_code=fault.http_status)
        failure = None if fault is None or fault.errcode is None else Failure(fault.errcode)
        if failure is None:
            try:
                answer = handler(request.method, query, body)
            except Failure as raised:
                failure = raised
        if failure is not None:
            answer = {"errcode": failure.errcode, "errmsg": f"{failure.errmsg}, rid: {_rid()}"}
        errcode = int(answer.get("errcode", 0))
        emu.record(path, logged, errcode)
        status = 200 if fault is None or fault.http_status is None else fault.http_status
        return Response(
            json.dumps(answer, ensure_ascii=False).encode("utf-8"),
            status_code=status,  # business errors are HTTP 200, as WeChat sends them
            media_type=emu.settings.content_type,
        )

    return endpoint


async def _object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise ControlError("the body must be JSON") from None
    if not isinstance(body, dict):
        raise ControlError("the body must be a JSON object")
    return body


def _optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise ControlError(f"{name} must be a string")
    return value


Control = Callable[[Emulator, dict[str, Any]], dict[str, Any]]
OK = {"ok": True}


def _control(emu: Emulator, run: Control) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return JSONResponse(run(emu, await _object(request)))
        except ControlError as error:
            return JSONResponse({"error": str(error)}, status_code=error.status)

    return endpoint


def _flag(body: dict[str, Any], name: str, default: bool | None = None) -> bool | None:
    value = body.get(name, default)
    if value is not None and not isinstance(value, bool):
        raise ControlError(f"{name} must be true or false")
    return value


def _login(emu: Emulator, body: dict[str, Any]) -> dict[str, Any]:
    return emu.login(
        openid=_optional_str(body, "openid"),
        unionid=_optional_str(body, "unionid"),
        appid=_optional_str(body, "appid"),
        blocked=_flag(body, "blocked"),
    )


def _phone_code(emu: Emulator, body: dict[str, Any]) -> dict[str, Any]:
    country = _optional_str(body, "country_code") or "86"
    return {"code": emu.phone_code(body.get("openid"), _optional_str(body, "phone"), country)}


def _encrypted_data(emu: Emulator, body: dict[str, Any]) -> dict[str, Any]:
    data = body.get("data", {})
    if not isinstance(data, dict):
        raise ControlError("data must be a JSON object")
    return emu.encrypted_data(body.get("openid"), data)


def _rotate(emu: Emulator, body: dict[str, Any]) -> dict[str, Any]:
    emu.rotate_session_key(body.get("openid"))
    return OK


def _expire(emu: Emulator, body: dict[str, Any]) -> dict[str, Any]:
    emu.expire_session_key(body.get("openid"))
    return OK


def _block(emu: Emulator, body: dict[str, Any]) -> dict[str, Any]:
    emu.block(body.get("openid"), bool(_flag(body, "blocked", True)))
    return OK


def _payment(emu: Emulator, body: dict[str, Any]) -> dict[str, Any]:
    return emu.pay(
        body.get("openid"),
        transaction_id=_optional_str(body, "transaction_id"),
        mch_id=_optional_str(body, "mch_id"),
        out_trade_no=_optional_str(body, "out_trade_no"),
    )


def _faults(emu: Emulator, body: dict[str, Any]) -> dict[str, Any]:
    path = body.get("path")
    if not isinstance(path, str) or not path:
        raise ControlError("path is required, e.g. /sns/jscode2session")
    errcode, latency, status = body.get("errcode"), body.get("latency_ms", 0), body.get("status")
    times = body.get("times", 1)
    if errcode is not None and not isinstance(errcode, int):
        raise ControlError("errcode must be an integer")
    if status is not None and not (isinstance(status, int) and 100 <= status <= 599):
        raise ControlError("status must be an HTTP status code")
    if not isinstance(latency, int | float) or latency < 0:
        raise ControlError("latency_ms must be a number >= 0")
    if not isinstance(times, int) or times < 1:
        raise ControlError("times must be an integer >= 1")
    emu.add_fault(path, errcode=errcode, latency_ms=latency, http_status=status, times=times)
    return OK


def _config(emu: Emulator, body: dict[str, Any]) -> dict[str, Any]:
    legacy = _flag(body, "legacy_expires_in")
    if legacy is not None:
        emu.settings.legacy_expires_in = legacy
    content_type = _optional_str(body, "content_type")
    if content_type is not None:
        emu.settings.content_type = content_type
    limit = body.get("rate_limit")
    if limit is not None:
        if not isinstance(limit, int) or limit < 1:
            raise ControlError("rate_limit must be an integer >= 1")
        emu.settings.rate_limit = limit
    return OK


def _reset(emu: Emulator, body: dict[str, Any]) -> dict[str, Any]:
    emu.reset()
    return OK


CONTROLS: dict[str, Control] = {
    "login": _login,
    "phone-code": _phone_code,
    "encrypted-data": _encrypted_data,
    "session-key/rotate": _rotate,
    "session-key/expire": _expire,
    "block": _block,
    "payment": _payment,
    "faults": _faults,
    "config": _config,
    "reset": _reset,
}


def build_app(emu: Emulator) -> Starlette:
    async def calls(request: Request) -> Response:
        return JSONResponse({"calls": list(emu.calls)})

    async def index(request: Request) -> Response:
        return JSONResponse({"emulator": "huihua WeChat emulator", "apps": sorted(emu.apps)})

    routes = [Route("/", index, methods=["GET"]), Route("/_emulator/calls", calls, methods=["GET"])]
    routes += [
        Route(path, _api_endpoint(emu, path, handler), methods=["GET", "POST"])
        for path, handler in _api_routes(emu).items()
    ]
    routes += [
        Route(f"/_emulator/{name}", _control(emu, run), methods=["POST"]) for name, run in CONTROLS.items()
    ]
    app = Starlette(routes=routes)
    app.state.emulator = emu
    return app
