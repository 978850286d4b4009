"""Issue 9 items 3 and 7 against real processes: an evicting Redis loses a user's index, and
logout-all, a password change or a disable must still end the attacker's session. Also
`huihua doctor` and `huihua serve` on an evicting Redis.

The eviction is made deterministic: other data in the same Redis has no TTL (so `volatile-lru`
never takes it), the sessions, which are in use and so would outlive the idle index anyway, have
their TTL taken off during the fill and put back after it, and the fill stops as soon as the
index is gone. What remains is the state the attack needs: live sessions, no index.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis
from click.testing import CliRunner
from servicekit import PASSWORD, SERVICE_KEY, ServeProcess, free_port, wait_for_port

from huihua.cli import main
from huihua.stores.redis import RedisBase
from redis_servers import Cluster, SentinelGroup, Server

pytestmark = pytest.mark.slow


class EvictingRedis:
    """A throwaway redis-server of our own, with an eviction policy; stopped by its PID."""

    def __init__(self, folder: Path, policy: str, maxmemory: str = "2mb") -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(folder), "--maxmemory", maxmemory, "--maxmemory-policy", policy,
             "--maxmemory-samples", "64"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.port, self.proc)
        self.client = redis.Redis(port=self.port)
        self.junk = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def keys(self, pattern: str) -> set[str]:
        return {k.decode() for k in self.client.scan_iter(match=pattern, count=1000)}  # SCAN: no LRU touch

    def evict(self, key: str, *, spare: str) -> None:
        """Fill with TTL-less data until `key` is evicted (asserting it was), and no further;
        the keys matching `spare` are kept out of the eviction's reach meanwhile."""
        kept = {k: int(self.client.ttl(k)) for k in self.keys(spare)}
        for k in kept:
            self.client.persist(k)
        limit = int(self.client.info("memory")["maxmemory"])
        # Many small keys first, far from the limit: the key table grows now (a growing table
        # allocates kilobytes at once), not in the last steps, which must each add only a little.
        self.client.mset({f"small:{i}": "x" for i in range(600)})
        for size, margin in ((16384, 20 * 1024), (1024, 2 * 1024)):
            while int(self.client.info("memory")["used_memory"]) < limit - margin:
                self.client.set(f"junk:{self.junk}", "x" * size)
                self.junk += 1
        for _ in range(5000):
            if key not in self.keys(key):
                break
            self.client.set(f"junk:{self.junk}", "x" * 32)
            self.junk += 1
        assert key not in self.keys(key), "the index was never evicted"
        assert int(self.client.info("stats")["evicted_keys"]) >= 1
        self.client.delete(*(f"junk:{i}" for i in range(16)))  # the pressure passes; the loss stays
        for k, ttl in kept.items():
            assert self.client.expire(k, ttl), k

    def stop(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def evicting(tmp_path: Path) -> Iterator[Callable[[str], EvictingRedis]]:
    started: list[EvictingRedis] = []

    def start(policy: str) -> EvictingRedis:
        server = EvictingRedis(tmp_path, policy)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(http: httpx.Client, username: str, password: str = PASSWORD) -> tuple[str, str]:
    r = http.post("/v1/auth/login", json={"username": username, "password": password},
                  headers={"X-Session-Transport": "header"})  # fmt: skip
    assert r.status_code == 200, r.text
    return r.json()["token"], r.json()["user"]["id"]


def assert_revoked(http: httpx.Client, token: str) -> None:
    for path in ("/v1/auth/me", "/v1/session/data"):
        r = http.get(path, headers=bearer(token))
        code = r.json().get("error", {}).get("code")
        assert (r.status_code, code) == (401, "session_revoked"), (path, r.text)
    r = http.post("/v1/introspect", json={"token": token}, headers={"X-Service-Key": SERVICE_KEY})
    assert r.json() == {"active": False, "reason": "session_revoked"}


def change_password(http: httpx.Client, owner: str, _: str) -> None:
    r = http.post("/v1/auth/password", json={"current_password": PASSWORD, "new_password": PASSWORD + "!"},
                  headers=bearer(owner))  # fmt: skip
    assert r.status_code == 200, r.text
    assert http.get("/v1/auth/me", headers=bearer(r.json()["token"])).status_code == 200  # owner stays in


def logout_all(http: httpx.Client, owner: str, _: str) -> None:
    assert http.post("/v1/auth/logout-all", json={}, headers=bearer(owner)).status_code == 204


def disable(http: httpx.Client, _: str, user_id: str) -> None:
    r = http.post(f"/v1/admin/users/{user_id}/disable", headers={"X-Service-Key": SERVICE_KEY})
    assert r.status_code == 204
    r = http.post(f"/v1/admin/users/{user_id}/enable", headers={"X-Service-Key": SERVICE_KEY})
    assert r.status_code == 204  # enabling again revives none of the old sessions


@pytest.mark.parametrize("action", [logout_all, change_password, disable], ids=lambda a: a.__name__)
def test_an_evicted_user_index_does_not_save_the_attackers_session(
    action: Callable[[httpx.Client, str, str], None],
    evicting: Callable[[str], EvictingRedis],
    serve: Callable[..., ServeProcess],
    tmp_path: Path,
) -> None:
    store = evicting("volatile-lru")
    server = serve(HUIHUA_STORE=store.url, HUIHUA_DATABASE=f"sqlite:///{tmp_path}/accounts.db",
                   HUIHUA_SWEEP_INTERVAL="3600")  # fmt: skip
    with httpx.Client(base_url=server.url, timeout=10) as http:
        r = http.post("/v1/accounts", json={"username": "owner", "password": PASSWORD})
        assert r.status_code == 201
        attacker, user_id = login(http, "owner")  # the attacker learned the password once
        owner, _ = login(http, "owner")
        index = RedisBase.index_key(user_id)
        assert store.keys(index) == {index}
        time.sleep(2)  # the index idles; the sessions are in use:
        for token in (attacker, owner):
            assert http.get("/v1/session/data", headers=bearer(token)).status_code == 200
        store.evict(index, spare="hh:[sd]:*")
        assert len(store.keys("hh:s:*")) == 2  # both sessions are still stored
        assert http.get("/v1/auth/me", headers=bearer(attacker)).status_code == 200
        action(http, owner, user_id)
        assert_revoked(http, attacker)
    assert "Traceback" not in server.log()


def test_doctor_fails_on_an_evicting_redis(evicting: Callable[[str], EvictingRedis], tmp_path: Path) -> None:
    env = {"HUIHUA_DATABASE": f"sqlite:///{tmp_path}/accounts.db", "HUIHUA_SERVICE_KEY": "",
           "HUIHUA_WECHAT_APPID": "", "HUIHUA_WECHAT_SECRET": "", "HUIHUA_CONFIG": "",
           "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}  # fmt: skip
    lru = evicting("allkeys-lru")
    result = CliRunner(env=env | {"HUIHUA_STORE": lru.url}).invoke(main, ["doctor"])
    assert result.exit_code == 1, result.stderr
    assert "✗ Redis maxmemory-policy is allkeys-lru" in result.stderr
    assert "maxmemory-policy noeviction" in result.stderr
    safe = evicting("noeviction")
    result = CliRunner(env=env | {"HUIHUA_STORE": safe.url}).invoke(main, ["doctor"])
    assert result.exit_code == 0, result.stderr
    assert "✓ Redis maxmemory-policy is noeviction" in result.stderr


def test_doctor_says_when_the_policy_cannot_be_checked(
    evicting: Callable[[str], EvictingRedis], tmp_path: Path
) -> None:
    server = evicting("noeviction")
    server.client.execute_command("ACL", "SETUSER", "default", "-config")  # as managed Redis does
    env = {"HUIHUA_STORE": server.url, "HUIHUA_DATABASE": f"sqlite:///{tmp_path}/accounts.db",
           "HUIHUA_SERVICE_KEY": "", "HUIHUA_CONFIG": "", "COLUMNS": "200", "NO_COLOR": "1"}  # fmt: skip
    result = CliRunner(env=env).invoke(main, ["doctor"])
    assert "maxmemory-policy could not be checked" in result.stderr
    assert "✓ session store reachable" in result.stderr


def test_serve_warns_at_start_on_an_evicting_redis(
    evicting: Callable[[str], EvictingRedis], serve: Callable[..., ServeProcess], tmp_path: Path
) -> None:
    lru = evicting("volatile-lru")
    warned = serve(HUIHUA_STORE=lru.url, HUIHUA_DATABASE=f"sqlite:///{tmp_path}/a.db", port=free_port())
    safe = evicting("noeviction")
    quiet = serve(HUIHUA_STORE=safe.url, HUIHUA_DATABASE=f"sqlite:///{tmp_path}/b.db", port=free_port())
    assert "warning: Redis maxmemory-policy is volatile-lru" in warned.log()
    assert "maxmemory-policy noeviction" in warned.log()
    assert "maxmemory-policy" not in quiet.log()


DOCTOR_ENV = {"HUIHUA_SERVICE_KEY": "", "HUIHUA_WECHAT_APPID": "", "HUIHUA_WECHAT_SECRET": "", "HUIHUA_CONFIG": "",
              "COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb"}  # fmt: skip


def policy_line(output: str) -> str:
    """The doctor's (or serve's) line about maxmemory-policy; the store URL above names every port."""
    lines = [line for line in output.splitlines() if "maxmemory-policy is" in line or "could not be" in line]
    assert len(lines) == 1, output
    return lines[0]


@contextmanager
def policies(servers: list[Server]) -> Iterator[Callable[[Server, str], None]]:
    """Set `maxmemory-policy` on single servers of a shared topology; every one is put back after."""
    before = {s.port: s.client().config_get("maxmemory-policy")["maxmemory-policy"] for s in servers}
    assert set(before.values()) == {"noeviction"}

    def set_policy(server: Server, policy: str) -> None:
        assert server.client().config_set("maxmemory-policy", policy)

    try:
        yield set_policy
    finally:
        for s in servers:
            if s.alive:
                s.client().config_set("maxmemory-policy", before[s.port])


def test_doctor_and_serve_read_every_node_of_a_redis_cluster(
    redis_cluster: Cluster, redis_cluster_url: str, serve: Callable[..., ServeProcess], tmp_path: Path
) -> None:
    """CONFIG GET on a cluster client goes to one node: a master that evicts must be found
    wherever it is, and a replica too (a failover makes it a master, policy and all)."""
    env = DOCTOR_ENV | {"HUIHUA_STORE": redis_cluster_url, "HUIHUA_DATABASE": f"sqlite:///{tmp_path}/a.db"}
    masters = redis_cluster.masters()
    replicas = [s for s in redis_cluster.servers if s.alive and s not in masters]
    assert len(masters) == 3 and len(replicas) == 3
    with policies(redis_cluster.servers) as set_policy:
        result = CliRunner(env=env).invoke(main, ["doctor"])
        assert result.exit_code == 0, result.stderr
        line = policy_line(result.stderr)
        assert line.startswith("✓ Redis maxmemory-policy is noeviction on ")
        for s in redis_cluster.servers:
            assert f"127.0.0.1:{s.port} (" in line, line

        for master in masters:  # each master in turn: none is missed
            set_policy(master, "allkeys-lru")
            result = CliRunner(env=env).invoke(main, ["doctor"])
            assert result.exit_code == 1, result.stderr
            line = policy_line(result.stderr)
            named = f"✗ Redis maxmemory-policy is allkeys-lru on 127.0.0.1:{master.port} (master): "
            assert line.startswith(named), line  # that master, and no other node
            assert line.endswith("set `maxmemory-policy noeviction` (and watch memory)")  # the advice
            set_policy(master, "noeviction")

        set_policy(replicas[0], "volatile-lru")
        set_policy(masters[2], "allkeys-lfu")
        result = CliRunner(env=env).invoke(main, ["doctor"])
        assert result.exit_code == 1, result.stderr
        line = policy_line(result.stderr)
        assert f"allkeys-lfu on 127.0.0.1:{masters[2].port} (master)" in line
        assert f"volatile-lru on 127.0.0.1:{replicas[0].port} (replica)" in line
        assert line.count(" on 127.0.0.1:") == 2, line

        warned = serve(HUIHUA_STORE=redis_cluster_url, HUIHUA_DATABASE=f"sqlite:///{tmp_path}/b.db")
        line = policy_line(warned.log())
        assert line.startswith("warning: Redis maxmemory-policy is ")
        assert f"allkeys-lfu on 127.0.0.1:{masters[2].port} (master)" in line
    result = CliRunner(env=env).invoke(main, ["doctor"])
    assert result.exit_code == 0, result.stderr  # every node put back


def test_doctor_reads_the_sentinel_master_and_its_replica(
    redis_sentinel: SentinelGroup, redis_sentinel_url: str, tmp_path: Path
) -> None:
    env = DOCTOR_ENV | {"HUIHUA_STORE": redis_sentinel_url, "HUIHUA_DATABASE": f"sqlite:///{tmp_path}/a.db"}
    master = redis_sentinel.current_master()
    replica = next(s for s in (redis_sentinel.master, redis_sentinel.replica) if s is not master)
    with policies([master, replica]) as set_policy:
        result = CliRunner(env=env).invoke(main, ["doctor"])
        assert result.exit_code == 0, result.stderr
        line = policy_line(result.stderr)
        assert line == (
            f"✓ Redis maxmemory-policy is noeviction on 127.0.0.1:{master.port} (master),"
            f" 127.0.0.1:{replica.port} (replica)"
        )
        set_policy(master, "allkeys-lru")
        result = CliRunner(env=env).invoke(main, ["doctor"])
        assert result.exit_code == 1, result.stderr
        line = policy_line(result.stderr)
        assert line.startswith(
            f"✗ Redis maxmemory-policy is allkeys-lru on 127.0.0.1:{master.port} (master): "
        )
        set_policy(master, "noeviction")
        set_policy(replica, "volatile-ttl")
        result = CliRunner(env=env).invoke(main, ["doctor"])
        assert result.exit_code == 1, result.stderr
        line = policy_line(result.stderr)
        assert line.startswith(
            f"✗ Redis maxmemory-policy is volatile-ttl on 127.0.0.1:{replica.port} (replica): "
        )
