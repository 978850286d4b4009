"""WeChat logins per second through the service, against the emulator, beside password logins.

    uv run python bench/wechat_logins.py [--seconds 10] [--concurrency 16]

Starts `huihua emulator` and `huihua serve` (SQLite, one worker) as separate processes; this
process is the load: each login asks the emulator for a code (the phone's wx.login), then posts
it to /v1/auth/wechat. Password logins (argon2id) run in the same run for the ratio. Results go
to bench/results/wechat.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench/results/wechat.md"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "huihua.cli", *args],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_up(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            try:
                await client.get(url)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


async def load(seconds: float, concurrency: int, one: object) -> list[float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            start_at = time.perf_counter()
            await one()  # type: ignore[operator]
            latencies.append(time.perf_counter() - start_at)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    opts = parser.parse_args()
    wx_port, port = free_port(), free_port()
    tmp = tempfile.mkdtemp()
    emulator = start(["emulator", "--port", str(wx_port)], {})
    service = start(
        ["serve", "--port", str(port)],
        {
            "HUIHUA_STORE": f"sqlite:///{tmp}/s.db",
            "HUIHUA_WECHAT_APPID": "wx1234567890abcdef",
            "HUIHUA_WECHAT_SECRET": "huihua-emulator-secret",
            "HUIHUA_WECHAT_LOGINS_PER_IP_MINUTE": "100000000",
            "HUIHUA_WECHAT_API_BASE": f"http://127.0.0.1:{wx_port}",
        },
    )
    base, wx = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{wx_port}"
    try:
        await wait_up(f"{base}/healthz")
        await wait_up(f"{wx}/_emulator/calls")
        limits = httpx.Limits(max_connections=opts.concurrency * 2)
        header = {"X-Session-Transport": "header"}
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            await client.post(f"{wx}/_emulator/config", json={"rate_limit": 10**9})
            openids = [
                (await client.post(f"{wx}/_emulator/login", json={})).json()["openid"] for _ in range(64)
            ]
            creds = {"username": "bench", "password": "bench password 1"}
            await client.post(f"{base}/v1/accounts", json=creds, headers=header)
            turn = iter(range(10**9))

            async def wechat_login() -> None:
                openid = openids[next(turn) % len(openids)]
                code = (await client.post(f"{wx}/_emulator/login", json={"openid": openid})).json()["code"]
                answer = await client.post(f"{base}/v1/auth/wechat", json={"code": code}, headers=header)
                assert answer.status_code == 200, answer.text

            async def code_only() -> None:  # the phone's part alone, to subtract
                await client.post(f"{wx}/_emulator/login", json={"openid": openids[0]})

            async def password_login() -> None:
                answer = await client.post(f"{base}/v1/auth/login", json=creds, headers=header)
                assert answer.status_code in (200, 429), answer.text

            await load(1.0, opts.concurrency, wechat_login)  # warm up
            rows = []
            for name, fn in [
                ("WeChat login (code + /v1/auth/wechat)", wechat_login),
                ("emulator wx.login alone", code_only),
                ("password login (argon2id)", password_login),
            ]:
                lat = await load(opts.seconds, opts.concurrency, fn)
                q = statistics.quantiles(lat, n=100)
                rows.append((name, len(lat) / opts.seconds, q[49] * 1000, q[98] * 1000))
    finally:
        for proc in (service, emulator):
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    wechat_rate = rows[0][1]
    lines = [
        "# WeChat logins per second",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {platform.node()} · {os.cpu_count()} cores · "
        f"Python {platform.python_version()} · `huihua serve` 1 worker on SQLite · emulator in its own "
        f"process · {opts.concurrency} concurrent clients · {opts.seconds:g} s each",
        "",
        "| scenario | per second | p50 ms | p99 ms |",
        "|---|---:|---:|---:|",
        *[f"| {n} | {r:.0f} | {p50:.1f} | {p99:.1f} |" for n, r, p50, p99 in rows],
        "",
        f"A WeChat login is {wechat_rate / rows[2][1]:.1f}× as many per second as a password login: "
        "it needs no argon2 (WeChat vouches for the user) but makes one HTTP call to WeChat, seals "
        "the session_key, writes the identity and the session, and remembers the code's outcome "
        "for idempotent retries. The load generator, the emulator and the service share two cores.",
        "",
    ]
    RESULTS.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
