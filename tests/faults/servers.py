"""The real processes of the fault scenarios, each stopped by its own id.

- `Serve`: `huihua serve --workers 2` in its own process group (so kill -9 of the whole server
  reaches the workers too), built on servicekit's ServeProcess.
- `RedisProcess`: a redis-server of our own on a free loopback port, durable or not.
- `PostgresCluster`: a PostgreSQL 15 cluster of our own (initdb into a tmp dir, as the postgres
  user), so restarting it harms no one else.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
from servicekit import ServeProcess, free_port, huihua_command, wait_for_port


class Serve(ServeProcess):
    def __init__(self, env: dict[str, str], *, cwd: Path, workers: int = 2, port: int | None = None) -> None:
        super().__init__(env, cwd=cwd, port=port)
        self.workers = workers

    def start(self) -> Serve:
        self._log = self.stderr_path.open("ab")
        self.proc = subprocess.Popen(
            [*huihua_command(), "serve", "--port", str(self.port), "--workers", str(self.workers),
             "--log-level", self.log_level],
            env=self.env, cwd=self.cwd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        wait_for_port(self.port, self.proc)
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until every worker answers /healthz (a fresh connection lands on any of them)."""
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
        assert self.proc is not None
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            return []
        pids = []
        for pid in map(int, children):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline:  # a uvicorn worker (multiprocessing spawn), not a helper
                pids.append(pid)
        return pids

    def kill_worker(self) -> int:
        pid = self.worker_pids()[0]
        os.kill(pid, signal.SIGKILL)
        return pid

    def kill_all(self) -> None:
        """kill -9 of the whole server: the supervisor and its workers, at once."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None:
            super().stop()
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # workers a killed supervisor left behind
            except ProcessLookupError:
                pass


class RedisProcess:
    """redis-server on our own port; `appendfsync` None: no persistence at all."""

    def __init__(self, folder: Path, *, appendfsync: str | None = None) -> None:
        self.port = free_port()
        self.folder = folder
        self.appendfsync = appendfsync
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        durable = (
            ["--appendonly", "yes", "--appendfsync", self.appendfsync]
            if self.appendfsync
            else ["--appendonly", "no"]
        )
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *durable,
             "--dir", str(self.folder), "--enable-debug-command", "local"],
            stdout=(self.folder / "redis.log").open("ab"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for_port(self.port, self.proc)
        deadline = time.monotonic() + 20  # until the AOF is loaded
        while self.cli("PING") != "PONG":
            if time.monotonic() > deadline:
                raise TimeoutError("redis-server did not answer PING")
            time.sleep(0.05)
        return self

    def cli(self, *args: str, timeout: float = 10) -> str:
        out = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return out.stdout.strip()

    def sleep_async(self, seconds: float) -> subprocess.Popen[bytes]:
        """DEBUG SLEEP: the server stops answering anyone for `seconds`."""
        return subprocess.Popen(["redis-cli", "-p", str(self.port), "DEBUG", "SLEEP", str(seconds)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    stop = kill


PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PostgresCluster:
    """Our own PostgreSQL: initdb as the postgres user into `folder`, a free port, a socket dir
    of its own; `stop()` in teardown."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.data = folder / "data"
        self.sockets = folder / "sock"

    def _as_postgres(self, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["su", "postgres", "-c", " ".join(cmd)], capture_output=True, text=True,
                              timeout=timeout, check=True)  # fmt: skip

    def init(self) -> PostgresCluster:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(exist_ok=True)
        shutil.chown(self.folder, "postgres", "postgres")
        shutil.chown(self.sockets, "postgres", "postgres")
        self.folder.chmod(0o755)
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                          "--no-sync", ">/dev/null")  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("fsync = on\nshared_buffers = 16MB\nmax_connections = 60\n")
        return self

    def start(self) -> PostgresCluster:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "pg.log"), "-w",
                          "-o", f"'-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1'", "start")  # fmt: skip
        return self

    def restart(self, mode: str = "fast") -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-l",
                          str(self.folder / "pg.log"), "-o",
                          f"'-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1'", "restart")  # fmt: skip

    def kill(self) -> None:
        """SIGKILL of the postmaster's children too: a crash, then crash recovery on start."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(["su", "postgres", "-c", f"{PG_BIN / 'pg_ctl'} -D {self.data} -m immediate -w stop"],
                           capture_output=True, timeout=60, check=False)  # fmt: skip

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


class SmallDisk:
    """A tmpfs of `size` mounted at `folder` (we run as root), and a file that fills it."""

    def __init__(self, folder: Path, size: str = "6m") -> None:
        self.folder = folder
        self.size = size
        self.filler = folder / "filler.bin"
        self.mounted = False

    def mount(self) -> SmallDisk:
        self.folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.size}", "tmpfs", str(self.folder)], check=True
        )
        self.mounted = True
        return self

    def fill(self) -> int:
        """Write until ENOSPC; the bytes written."""
        written = 0
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (65536, 4096, 512, 1):
                try:
                    while True:
                        written += os.write(fd, b"\0" * size)
                except OSError:
                    continue
        finally:
            os.close(fd)
        return written

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.folder)], check=False)
            self.mounted = False


class LockHolder:
    """Another process holding SQLite's write lock (`BEGIN EXCLUSIVE`) on a file until released."""

    SCRIPT = (
        "import sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n"
        "db.execute('BEGIN EXCLUSIVE')\n"
        "print('locked', flush=True)\n"
        "sys.stdin.readline()\n"
        "db.execute('ROLLBACK')\n"
    )

    def __init__(self, path: Path) -> None:
        self.path = path
        self.proc: subprocess.Popen[str] | None = None

    def hold(self) -> None:
        import sys

        self.proc = subprocess.Popen([sys.executable, "-c", self.SCRIPT, str(self.path)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "locked"

    def release(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
