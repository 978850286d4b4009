"""CPU per request with no network and no load generator: call the ASGI app in-process, one
request at a time, and divide process CPU time by requests. Far less noisy than req/s on a
shared machine, so it is the quick way to check that a fix to a hot spot pays.

    uv run python bench/http/inproc.py huihua [N] [--profile me|incr]     # huihua as shipped
    uv run python bench/http/inproc.py asyncdeps [N]  # services/session_context made async (experiment)
    uv run python bench/http/inproc.py bare [N]       # the floor
    STORE=redis://127.0.0.1:6379/9 uv run python bench/http/inproc.py huihua   (flushes nothing: use db 9)

`--profile` runs that scenario under cProfile (SORT=cumulative|tottime, FILT=regex, TOP=n).
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
_tmp = tempfile.mkdtemp(prefix="huihua-inproc-")
os.environ["HUIHUA_STORE"] = os.environ.get("STORE") or f"sqlite:///{_tmp}/h.db"
os.environ["HUIHUA_DATABASE"] = f"sqlite:///{_tmp}/h.db"
VARIANT = sys.argv[1] if len(sys.argv) > 1 else "huihua"

if VARIANT == "asyncdeps":  # what src/huihua/http/services.py would do with `async def`
    from fastapi import Request

    import huihua.http.services as _svc
    from huihua.http.middleware import context_of

    async def _services(request: Request) -> Any:
        return request.app.state.huihua

    async def _session_context(request: Request) -> Any:
        return context_of(request.scope)

    _svc.services = _services  # type: ignore[assignment]
    _svc.session_context = _session_context  # type: ignore[assignment]

import bare_peer  # noqa: E402

from huihua.http.app import create_app  # noqa: E402


def _scope(method: str, path: str, headers: dict[str, str]) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "client": ("127.0.0.1", 5555), "server": ("127.0.0.1", 8600),
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
            + [(b"host", b"127.0.0.1:8600")]}  # fmt: skip


async def call(
    app: Any, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> dict[str, Any]:
    out: dict[str, Any] = {"body": b""}
    sent = False
    if body:
        headers = {**headers, "content-type": "application/json", "content-length": str(len(body))}

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        else:
            out["body"] += message.get("body", b"")

    await app(_scope(method, path, headers), receive, send)
    return out


async def main(n: int, profile: str) -> None:
    app = create_app(sweeper=False)
    creds = json.dumps({"username": "bench", "password": "bench-password-1"}).encode()
    await call(app, "POST", "/v1/accounts", {}, creds)
    r = await call(app, "POST", "/v1/auth/login", {"x-session-transport": "header"}, creds)
    auth = {"authorization": "Bearer " + json.loads(r["body"])["token"]}
    target = bare_peer.app if VARIANT == "bare" else app
    scenarios = {"me": ("GET", "/v1/auth/me", auth, b""),
                 "incr": ("PATCH", "/v1/session/data", auth, b'{"incr": {"n": 1}}')}  # fmt: skip
    for name, args in scenarios.items():
        if VARIANT == "bare" and name != "me":
            continue
        for _ in range(200):
            r = await call(target, *args)
        assert r["status"] == 200, r
        prof = cProfile.Profile() if profile == name else None
        t0 = time.process_time()
        if prof:
            prof.enable()
        for _ in range(n):
            await call(target, *args)
        if prof:
            prof.disable()
        spent = time.process_time() - t0
        print(f"{VARIANT:10s} {name:5s} {spent / n * 1e6:8.1f} µs CPU/request"
              f"{' (under cProfile)' if prof else ''}")  # fmt: skip
        if prof:
            stats = pstats.Stats(prof)
            stats.sort_stats(os.environ.get("SORT", "cumulative"))
            stats.print_stats(os.environ.get("FILT", ""), int(os.environ.get("TOP", "40")))


if __name__ == "__main__":
    count = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2].isdigit() else 3000
    which = sys.argv[sys.argv.index("--profile") + 1] if "--profile" in sys.argv else ""
    import uvloop

    uvloop.run(main(count, which))
