"""The async twins on their own event loop (anyio), with real tasks racing each other."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from huihua.core.async_manager import AsyncSessionManager
from huihua.core.clock import FakeClock
from huihua.core.errors import SessionGone
from huihua.stores import async_store_from_url

from .conftest import KINDS


@pytest.fixture
def url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{os.fspath(tmp_path)}/a.db"
    return str(request.getfixturevalue(kind.replace("-", "_") + "_url"))


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_tasks_race_logins_increments_and_rotations(url: str, clock: FakeClock) -> None:
    store: Any = async_store_from_url(url)
    m = AsyncSessionManager(store, clock=clock, events=())
    try:
        logins = await asyncio.gather(*(m.login(None, f"u{i % 5}") for i in range(200)))
        assert len({s.token for s in logins}) == 200
        assert await m.count() == 200
        s = await m.create()

        async def bump() -> None:
            for _ in range(5):
                await m.update(await m.load(s.token or "", touch=False), incr={"n": 1})

        await asyncio.gather(*(bump() for _ in range(10)))
        assert (await m.load(s.token or ""))["n"] == 50
        copies = [await m.load(s.token or "") for _ in range(6)]
        results = await asyncio.gather(*(m.rotate(c) for c in copies), return_exceptions=True)
        assert sum(not isinstance(r, BaseException) for r in results) == 1
        assert all(isinstance(r, SessionGone) for r in results if isinstance(r, BaseException))
    finally:
        await store.close()
