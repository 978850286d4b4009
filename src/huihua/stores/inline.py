"""The async twin of an in-process store: call the sync store inline, never in a thread.

Memory and SQLite operations take microseconds, so a thread hop would cost more than the work.
What must not happen is a blocked event loop: the SQLite store is opened with `raise_busy=True`
and lock waits are retried here with `asyncio.sleep`, up to a deadline, then `StoreUnavailable`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

from ..core.errors import StoreUnavailable
from .sqlite import Busy


class InlineAsyncStore:
    def __init__(self, store: Any, *, busy_deadline: float = 5.0) -> None:
        self.sync = store
        self._busy_deadline = busy_deadline

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.sync, name)
        if not callable(method) or name.startswith("_"):
            raise AttributeError(name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            give_up = time.monotonic() + self._busy_deadline
            delay = 0.0005
            while True:
                try:
                    return method(*args, **kwargs)
                except Busy as exc:
                    if time.monotonic() >= give_up:
                        raise StoreUnavailable(f"store busy for {self._busy_deadline}s") from exc
                    await asyncio.sleep(delay * (1 + random.random()))  # noqa: S311 jitter only
                    delay = min(delay * 2, 0.05)

        call.__name__ = name
        setattr(self, name, call)  # cache: the next lookup skips __getattr__
        return call
