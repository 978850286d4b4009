"""Real `huihua serve --workers N` processes for the fuzz, soak, clock and WeChat-storm tests.

`WorkersServe` is servicekit's ServeProcess with a worker count, its own process group (so a
stop reaches every worker, by the supervisor's id) and the ids of its processes, for sampling
/proc. `ServerPool` starts them and stops each one it started, by id, even when a test fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

import httpx
from servicekit import ServeProcess, huihua_command, serve_env, wait_for_port


class WorkersServe(ServeProcess):
    def __init__(
        self,
        env: dict[str, str],
        *,
        cwd: Path,
        workers: int = 2,
        port: int | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        super().__init__(env, cwd=cwd, port=port)
        self.workers = workers
        self.args = args

    def start(self) -> WorkersServe:
        self._log = self.stderr_path.open("ab")
        command = [*huihua_command(), "serve", "--port", str(self.port), "--workers", str(self.workers),
                   "--log-level", self.log_level, *self.args]  # fmt: skip
        self.proc = subprocess.Popen(
            command,
            env=self.env,
            cwd=self.cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port, self.proc)
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until every worker is up (a fresh connection may land on any of them)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.workers < 2 or len(self.worker_pids()) >= self.workers:
                try:
                    if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
            time.sleep(0.1)
        raise TimeoutError(f"huihua serve on {self.port} not ready: {self.log()[-2000:]}")

    def worker_pids(self) -> list[int]:
        """The uvicorn worker processes (children started by multiprocessing spawn)."""
        assert self.proc is not None
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            return []
        pids = []
        for pid in map(int, children):
            try:
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    pids.append(pid)
            except OSError:
                continue
        return pids

    def pids(self) -> list[int]:
        """The supervisor and its workers: what a leak would grow in."""
        assert self.proc is not None
        return [self.proc.pid, *self.worker_pids()] if self.workers > 1 else [self.proc.pid]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # uvicorn's supervisor stops its workers on SIGTERM
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the group is this server's own
                self.proc.wait(5)
        if hasattr(self, "_log"):
            self._log.close()


class ServerPool:
    """`with ServerPool(tmp_path) as pool: pool.start(workers=2, HUIHUA_STORE=...)`."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.started: list[WorkersServe] = []

    def start(self, *, workers: int = 2, args: tuple[str, ...] = (), **extra: str) -> WorkersServe:
        server = WorkersServe(serve_env(self.cwd, **extra), cwd=self.cwd, workers=workers, args=args)
        self.started.append(server)
        return server.start()

    def __enter__(self) -> ServerPool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for server in self.started:
            server.stop()
