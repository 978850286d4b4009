"""B10: schemathesis over /openapi.json: no 5xx anywhere, anonymous and authenticated.

Every generated case is sent three times: with no credentials, as a header client (Bearer) and as
a browser (cookie + same Origin), the last two with a fresh live session of a real user and the
service key, so routes behind a login or X-Service-Key are exercised past their 401.
"""

from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
from typing import Any

import httpx
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from servicekit import PASSWORD, SERVICE_KEY

from huihua.config import Secret, Settings
from huihua.http.app import create_app
from huihua.stores import async_store_from_url
from huihua.wechat.emulator import DEFAULT_APPID, DEFAULT_SECRET
from huihua.wechat.emulator import create_app as create_emulator


def _fuzzed_app() -> FastAPI:
    folder = tempfile.mkdtemp(prefix="huihua-schemathesis-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    settings = Settings(
        store=f"sqlite:///{folder}/huihua.db",
        service_key=Secret(SERVICE_KEY),
        wechat_appid=DEFAULT_APPID,
        wechat_secret=Secret(DEFAULT_SECRET),
        wechat_api_base="http://wechat.test",
    )  # WeChat on the in-process emulator, so its routes are fuzzed past their 503 "not configured"
    # the store passed in: the app's lifespan, which the ASGI transport may run more than once,
    # leaves it and the accounts database open for the whole module
    store = async_store_from_url(settings.store)
    app = create_app(
        settings, store=store, sweeper=False, wechat_transport=httpx.ASGITransport(app=create_emulator())
    )
    app.state.fuzz_user = asyncio.run(app.state.huihua.accounts.register("fuzzer", PASSWORD)).id
    return app


# schemathesis' pytest integration needs the schema at import time (its `from_fixture` does not
# work under pytest 9), so the app lives for the module, on its own temporary SQLite file.
APP = _fuzzed_app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


def fresh_token(app: FastAPI, client: str) -> str:
    manager = app.state.huihua.manager
    session = asyncio.run(manager.create(user_id=app.state.fuzz_user, client=client))
    assert session.token
    return str(session.token)


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors(case: Any) -> None:
    fuzzed_app = APP
    bearer = fresh_token(fuzzed_app, "miniprogram")
    cookie = fresh_token(fuzzed_app, "browser")
    for headers, cookies in (
        ({}, None),
        ({"Authorization": f"Bearer {bearer}", "X-Service-Key": SERVICE_KEY}, None),
        ({"Origin": "http://localhost", "X-Service-Key": SERVICE_KEY}, {"sid": cookie}),
    ):
        merged = {**(case.headers or {}), **headers}
        response = case.call(headers=merged, cookies=cookies)
        case.validate_response(response, checks=[not_a_server_error])
        assert response.status_code < 500, (case.method, case.path, response.status_code, response.text)
