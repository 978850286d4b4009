"""Settings built in code take plain strings where the environment gives them: the app works."""

from __future__ import annotations

import httpx
import pytest

from huihua.config import Settings
from huihua.core.clock import FakeClock
from huihua.http.app import create_app

pytestmark = pytest.mark.anyio


async def test_plain_string_service_key_works_for_introspect(sqlite_url: str, clock: FakeClock) -> None:
    """Settings(service_key="k") once made /v1/introspect a 500 ('str' has no 'reveal')."""
    app = create_app(Settings(store=sqlite_url, service_key="plain-service-key"), clock=clock, sweeper=False)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        good = await http.post("/v1/introspect", json={"token": "not-a-token"},
                               headers={"X-Service-Key": "plain-service-key"})  # fmt: skip
        wrong = await http.post("/v1/introspect", json={"token": "not-a-token"},
                                headers={"X-Service-Key": "another-key"})  # fmt: skip
    assert good.status_code == 200, good.text
    assert good.json()["active"] is False
    assert wrong.status_code == 401, wrong.text
