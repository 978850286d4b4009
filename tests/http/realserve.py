"""A real `huihua serve` and a real `huihua emulator`, each in its own process on loopback.

The service runs with the root logger at DEBUG (every logger, httpx's and httpcore's included,
writes to its log file), so a test can read everything the process logged.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from huihua.wechat.emulator import DEFAULT_APPID, DEFAULT_SECRET

# `huihua serve` exactly as the command runs it, with logging.basicConfig(DEBUG) first.
_SERVE = (
    "import logging, sys; logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,"
    " format='%(levelname)s %(name)s %(message)s'); from huihua.cli import main; main()"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port} after {timeout}s")


@dataclass
class Process:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _start(args: list[str], env: dict[str, str], cwd: Path, name: str, port: int) -> Process:
    log_path = cwd / f"{name}-{port}.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    process = Process(proc, port, log_path)
    try:
        _wait_for(port, proc)
    except Exception:
        process.stop()
        raise
    return process


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUIHUA_")}
    env.update({"NO_COLOR": "1", "COLUMNS": "200", **extra})
    return env


def start_emulator(cwd: Path) -> Process:
    port = free_port()
    command = [str(Path(sys.executable).parent / "huihua"), "emulator", "--port", str(port)]
    return _start(command, _env(), cwd, "emulator", port)


def start_serve(cwd: Path, *, wechat_api_base: str | None, **extra: str) -> Process:
    port = free_port()
    settings = {"HUIHUA_STORE": f"sqlite:///{cwd}/huihua.db", **extra}
    if wechat_api_base is not None:
        settings |= {"HUIHUA_WECHAT_APPID": DEFAULT_APPID, "HUIHUA_WECHAT_SECRET": DEFAULT_SECRET,
                     "HUIHUA_WECHAT_API_BASE": wechat_api_base}  # fmt: skip
    command = [sys.executable, "-c", _SERVE, "serve", "--port", str(port), "--log-level", "debug"]
    return _start(command, _env(**settings), cwd, "serve", port)


@dataclass
class RealWorld:
    """The service and the emulator as two processes, and clients for both."""

    serve: Process
    emulator: Process
    control: httpx.Client = field(init=False)  # the phone's and the test's side: /_emulator/

    def __post_init__(self) -> None:
        self.control = httpx.Client(base_url=self.emulator.url, timeout=10)

    def client(self, token: str | None = None) -> httpx.Client:
        """A mini program: the header transport, and its token once it has one."""
        headers = {"Authorization": f"Bearer {token}"} if token else {"X-Session-Transport": "header"}
        return httpx.Client(base_url=self.serve.url, headers=headers, timeout=15)

    def code(self, openid: str | None = None) -> tuple[str, str]:
        answer = self.control.post("/_emulator/login", json={"openid": openid} if openid else {}).json()
        return answer["code"], answer["openid"]

    def calls(self, path: str) -> list[dict[str, Any]]:
        return [c for c in self.control.get("/_emulator/calls").json()["calls"] if c["path"] == path]

    def close(self) -> None:
        self.control.close()
        self.serve.stop()
        self.emulator.stop()
