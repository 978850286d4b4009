"""Flows: a use case written once as a generator, driven by a sync and an async driver.

A flow yields `Call(target, method, args)` and `Sleep(seconds)` and receives their results (or has
the exception raised at its `yield`, so it may clean up). `run` performs them on synchronous
targets (Django), `arun` awaits them on asynchronous ones (the service), both through the shared
drivers of `core/flow.py` (`throw=True`): the same decisions, as httpx drives `Auth.auth_flow`.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio

from ..core.flow import adrive, drive

T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    target: str  # a keyword of run/arun: "wechat", "store", "directory"
    method: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sleep:
    seconds: float


Flow = Generator[Call | Sleep, Any, T]


def call(target: str, method: str, *args: Any, **kwargs: Any) -> Call:
    """`yield call("store", "kv_get", key, now=now)`: the result of `store.kv_get(key, now=now)`."""
    return Call(target, method, args, kwargs)


def run(flow: Flow[T], **targets: Any) -> T:
    """Drive `flow`, calling the synchronous `targets` by name (wechat=, store=, directory=)."""

    def perform(op: Call | Sleep) -> Any:
        if isinstance(op, Sleep):
            time.sleep(op.seconds)
            return None
        return getattr(targets[op.target], op.method)(*op.args, **op.kwargs)

    return drive(flow, perform, throw=True)  # the flow decides: it may release its claim, or not


async def arun(flow: Flow[T], **targets: Any) -> T:
    """Drive `flow`, awaiting the asynchronous `targets` by name."""

    async def perform(op: Call | Sleep) -> Any:
        if isinstance(op, Sleep):
            await anyio.sleep(op.seconds)
            return None
        return await getattr(targets[op.target], op.method)(*op.args, **op.kwargs)

    return await adrive(flow, perform, throw=True)
