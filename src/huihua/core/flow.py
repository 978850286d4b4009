"""The one sync and the one async driver of every flow.

A *flow* is protocol logic written once, as a generator with no I/O: it yields steps (a Redis
script, an SQL query, an HTTP request to WeChat, a call to the store or the user directory, a
sleep) and receives each step's result (httpx's `Auth.auth_flow` idea). `drive` hands each step to
a synchronous `perform`, `adrive` awaits an asynchronous one; nothing else differs between the
twins. Users: the Redis and PostgreSQL stores (`stores/redis.py`, `stores/postgres.py`, with the
operations of `stores/flows.py`), the WeChat client (`wechat/client.py`) and the accounts' login
use case (`accounts/flow.py`).

The hooks are plain functions, so mypy sees them:

- `perform(step)` is the per-step hook: the only I/O. Whatever must happen around each step
  (Redis Cluster's NOSCRIPT reload, mapping a client's failures) lives in it.
- `throw=True`: an exception out of `perform` is raised inside the flow at its `yield`, so the
  flow may clean up or recover (the WeChat login releases its claim). By default it leaves the
  driver as it is.
- Around the whole flow (a transaction, a bound on concurrent calls, turning driver errors into
  `StoreUnavailable`), the caller wraps the `drive` call itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

S = TypeVar("S")  # a step the flow yields
R = TypeVar("R")  # what performing it answers
T = TypeVar("T")  # the flow's result


def drive(flow: Generator[S, R, T], perform: Callable[[S], R], *, throw: bool = False) -> T:
    """Run `flow` to its end, performing each step with `perform`; its return value."""
    result: Any = None
    if not throw:
        while True:
            try:
                step = flow.send(result)
            except StopIteration as done:
                value: T = done.value
                return value
            result = perform(step)
    error: Exception | None = None
    while True:
        try:
            step = flow.send(result) if error is None else flow.throw(error)
        except StopIteration as done:
            value = done.value
            return value
        result, error = None, None
        try:
            result = perform(step)
        except Exception as exc:  # the flow decides: it may clean up, recover, or not catch it
            error = exc


async def adrive(flow: Generator[S, R, T], perform: Callable[[S], Awaitable[R]], *, throw: bool = False) -> T:
    """`drive`, awaiting each step."""
    result: Any = None
    if not throw:
        while True:
            try:
                step = flow.send(result)
            except StopIteration as done:
                value: T = done.value
                return value
            result = await perform(step)
    error: Exception | None = None
    while True:
        try:
            step = flow.send(result) if error is None else flow.throw(error)
        except StopIteration as done:
            value = done.value
            return value
        result, error = None, None
        try:
            result = await perform(step)
        except Exception as exc:
            error = exc
