"""Real Redis topologies on loopback for the tests: a 3+3 Redis Cluster and a Sentinel group.

Every server is a `redis-server` child process on a free 127.0.0.1 port with its files in a
temporary folder, stopped by its PID. Nothing here talks to anything but loopback.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis

NODE_TIMEOUT_MS = 2000  # small, so a failover takes seconds


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(n: int, *, with_bus: bool = False) -> list[int]:
    """`n` free loopback ports (and port + 10000 free too, for a cluster's bus)."""
    ports: list[int] = []
    while len(ports) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port in ports or (with_bus and (port > 55000 or not _port_free(port + 10000))):
            continue
        ports.append(port)
    return ports


def wait_until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError, OSError):
            if check():  # type: ignore[operator]
                return
        time.sleep(0.1)
    raise TimeoutError(f"{what} not reached after {timeout}s")


class Server:
    """One redis-server (or sentinel) process."""

    def __init__(self, port: int, folder: Path, args: list[str], config: str | None = None) -> None:
        self.port = port
        self.folder = folder
        self.args = args
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        self.folder.mkdir(parents=True, exist_ok=True)
        head = [shutil.which("redis-server") or "redis-server"]
        if self.config is not None:
            conf = self.folder / "redis.conf"
            if not conf.exists():  # a sentinel rewrites its file: keep it across a restart
                conf.write_text(self.config)
            head.append(str(conf))
        log = (self.folder / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [*head, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--save", "", "--appendonly", "no", "--logfile", "", *self.args],
            cwd=self.folder, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        wait_until(lambda: self.client().ping(), 15, f"redis on {self.port}")
        return self

    def client(self, **kw: object) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, **kw)  # type: ignore[arg-type]

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: the crash of a machine, as far as its clients can tell."""
        if self.alive:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Cluster:
    """3 masters and 3 replicas, `cluster-require-full-coverage no` (a down shard stops only its
    own slots, as huihua's README advises)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--cluster-require-full-coverage", "no",
                "--cluster-replica-validity-factor", "0", "--repl-diskless-sync-delay", "0"]  # fmt: skip
        self.servers = [Server(p, folder / str(p), args) for p in free_ports(6, with_bus=True)]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{s.port}" for s in self.servers) + "/"

    def start(self) -> Cluster:
        for s in self.servers:
            s.start()
        nodes = [f"127.0.0.1:{s.port}" for s in self.servers]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *nodes, "--cluster-replicas", "1", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        self.wait_ok()
        return self

    def info(self, server: Server) -> dict[str, str]:
        text = server.client().execute_command("CLUSTER", "INFO")  # type: ignore[no-untyped-call]
        text = text.decode() if isinstance(text, bytes) else str(text)
        return dict(line.split(":", 1) for line in text.split() if ":" in line)

    def wait_ok(self, timeout: float = 30) -> None:
        def ok() -> bool:
            return all(
                self.info(s).get("cluster_state") == "ok" and len(self.masters()) == 3
                for s in self.servers
                if s.alive
            )

        def synced() -> bool:  # a replica that has not synced yet would lose data on failover
            replicas = [s for s in self.servers if s.alive and self.role(s) != "master"]
            return all(s.client().info("replication")["master_link_status"] == "up" for s in replicas)

        wait_until(ok, timeout, "cluster_state:ok with 3 masters")
        wait_until(synced, timeout, "every replica in sync")

    def role(self, server: Server) -> str:
        reply = server.client().execute_command("ROLE")  # type: ignore[no-untyped-call]
        return str(reply[0].decode() if isinstance(reply[0], bytes) else reply[0])

    def masters(self) -> list[Server]:
        return [s for s in self.servers if s.alive and self.role(s) == "master"]

    def master_of(self, key: str) -> Server:
        """The server serving `key`'s slot now."""
        any_master = self.masters()[0].client()
        slot = int(any_master.execute_command("CLUSTER", "KEYSLOT", key))  # type: ignore[no-untyped-call]
        for start, end, master, *_ in any_master.execute_command("CLUSTER", "SLOTS"):  # type: ignore[no-untyped-call]
            if start <= slot <= end:
                return next(s for s in self.servers if s.port == int(master[1]))
        raise LookupError(key)

    def flush(self) -> None:
        for s in self.masters():
            s.client().flushall()

    def heal(self) -> None:
        """Restart every killed node (it rejoins as a replica) and wait for a healthy cluster."""
        for s in self.servers:
            if not s.alive:
                s.start()
        self.wait_ok(60)

    def stop(self) -> None:
        for s in self.servers:
            s.stop()


class SentinelGroup:
    """One master, one replica and three sentinels (quorum 2) watching `huihua`."""

    MASTER = "huihua"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        mp, rp, *sps = free_ports(5)
        fsync = ["--appendonly", "yes", "--appendfsync", "always"]
        self.master = Server(mp, folder / "master", fsync)
        self.replica = Server(rp, folder / "replica", [*fsync, "--replicaof", "127.0.0.1", str(mp)])
        conf = (
            f"sentinel monitor {self.MASTER} 127.0.0.1 {mp} 2\n"
            f"sentinel down-after-milliseconds {self.MASTER} 1000\n"
            f"sentinel failover-timeout {self.MASTER} 4000\n"
            f"sentinel parallel-syncs {self.MASTER} 1\n"
        )
        self.sentinels = [Server(p, folder / f"sentinel{p}", ["--sentinel"], config=conf) for p in sps]

    def url(self, db: int = 0) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.MASTER}/{db}"

    def start(self) -> SentinelGroup:
        self.master.start()
        self.replica.start()
        wait_until(lambda: self.replica.client().info("replication")["master_link_status"] == "up",
                   30, "replication link up")  # fmt: skip
        for s in self.sentinels:
            s.start()
        wait_until(self._settled, 30, "sentinels agree on the master and know the replica")
        return self

    def _settled(self) -> bool:
        for s in self.sentinels:
            client = s.client()
            master = client.sentinel_master(self.MASTER)  # type: ignore[no-untyped-call]
            if master["num-other-sentinels"] < 2 or master["num-slaves"] < 1:
                return False
        return True

    def current_master(self) -> Server:
        _, port = self.sentinels[0].client().sentinel_get_master_addr_by_name(self.MASTER)  # type: ignore[no-untyped-call]
        return next(s for s in (self.master, self.replica) if s.port == int(port))

    def flush(self) -> None:
        self.current_master().client().flushall()

    def stop(self) -> None:
        for s in [*self.sentinels, self.master, self.replica]:
            s.stop()


@contextlib.contextmanager
def started(topology: Cluster | SentinelGroup) -> Iterator[Cluster | SentinelGroup]:
    try:
        yield topology.start()
    finally:
        topology.stop()
