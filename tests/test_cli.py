"""The `huihua` command: user create, sessions list/revoke, purge, doctor, serve."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from huihua.cli import main
from huihua.core.clock import FakeClock
from huihua.core.manager import SessionManager
from huihua.stores import store_from_url

PASSWORD = "correct horse battery"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"HUIHUA_STORE": f"sqlite:///{tmp_path}/huihua.db", "HUIHUA_DATABASE": "", "HUIHUA_SERVICE_KEY": "",
            "HUIHUA_WECHAT_APPID": "", "HUIHUA_WECHAT_SECRET": "", "HUIHUA_CONFIG": "", "HUIHUA_SECRET_KEY": "",
            "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}  # fmt: skip


def run(env: dict[str, str], *args: str, input: str | None = None) -> Result:
    return CliRunner(env=env).invoke(main, list(args), input=input, catch_exceptions=False)


def manager(env: dict[str, str], clock: FakeClock | None = None) -> SessionManager:
    return SessionManager(store_from_url(env["HUIHUA_STORE"]), events=(), clock=clock)


def create_user(env: dict[str, str], name: str) -> str:
    result = run(env, "user", "create", name, "--password", PASSWORD)
    assert result.exit_code == 0, result.output
    return result.stderr.split("(")[1].split(")")[0]


# -- user create ---------------------------------------------------------------------------------
def test_user_create(env: dict[str, str]) -> None:
    result = run(env, "user", "create", "Alice", "--password", PASSWORD, "--email", "a@example.com")
    assert result.exit_code == 0
    assert "created user alice (u_" in result.stderr
    assert PASSWORD not in result.output


def test_user_create_prompts_for_the_password_twice(env: dict[str, str]) -> None:
    result = run(env, "user", "create", "bob", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "created user bob" in result.stderr
    assert PASSWORD not in result.output  # hidden input is not echoed


@pytest.mark.parametrize(
    ("args", "message"),
    [(["carol", "--password", "short"], "at least 8 characters"),
     (["x", "--password", PASSWORD], "usernames are 2 to 64"),
     (["dup", "--password", PASSWORD], "the username 'dup' is taken")],
    ids=["short-password", "bad-name", "taken"],
)  # fmt: skip
def test_user_create_refused(env: dict[str, str], args: list[str], message: str) -> None:
    create_user(env, "dup")
    result = run(env, "user", "create", *args)
    assert result.exit_code == 2
    assert "error:" in result.stderr and message in result.stderr


# -- sessions list / revoke ----------------------------------------------------------------------
def test_sessions_list_and_revoke(env: dict[str, str]) -> None:
    uid = create_user(env, "dave")
    m = manager(env)
    phone = m.create(user_id=uid, client="miniprogram", ip="10.0.0.7")
    laptop = m.create(user_id=uid, client="browser", ip="10.0.0.8")
    m.create(user_id="u_someone_else", client="browser")
    result = run(env, "sessions", "list", "--user", uid)
    assert result.exit_code == 0
    assert phone.id in result.stdout and laptop.id in result.stdout
    assert "10.0.0.7" in result.stdout and "miniprogram" in result.stdout
    assert "2 live session(s)" in result.stderr
    assert phone.token not in result.output and laptop.token not in result.output  # type: ignore[operator]

    result = run(env, "sessions", "revoke", "--user", uid, "--id", phone.id)
    assert result.exit_code == 0 and "revoked 1 session" in result.stderr
    assert m.get(phone.token) is None and m.get(laptop.token) is not None
    result = run(env, "sessions", "revoke", "--user", uid, "--id", phone.id)
    assert result.exit_code == 1 and f"no live session {phone.id}" in result.stderr

    result = run(env, "sessions", "revoke", "--user", uid)
    assert result.exit_code == 0 and "revoked 1 session(s)" in result.stderr
    assert m.get(laptop.token) is None
    assert "0 live session(s)" in run(env, "sessions", "list", "--user", uid).stderr


def test_sessions_need_a_user(env: dict[str, str]) -> None:
    result = run(env, "sessions", "list")
    assert result.exit_code == 2 and "--user" in result.stderr


def test_sessions_list_prints_full_ids_at_any_width(env: dict[str, str]) -> None:
    uid = create_user(env, "narrow")
    ids = [manager(env).create(user_id=uid, client="miniprogram", ip="203.0.113.250").id for _ in range(2)]
    result = run(env | {"COLUMNS": "40"}, "sessions", "list", "--user", uid)
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.stdout.splitlines()[1:]]
    assert sorted(listed) == sorted(ids)  # whole ids, one a line, at the start: copy and paste them
    assert "…" not in result.stdout


def test_sessions_by_username(env: dict[str, str]) -> None:
    uid = create_user(env, "erin")
    mine = manager(env).create(user_id=uid, client="browser")
    manager(env).create(user_id="u_someone_else", client="browser")
    for who in ("erin", "ERIN", uid):
        result = run(env, "sessions", "list", "--user", who)
        assert result.exit_code == 0, result.output
        assert mine.id in result.stdout and result.stdout.count("browser") == 1
        assert "1 live session(s)" in result.stderr
    result = run(env, "sessions", "revoke", "--user", "erin")
    assert result.exit_code == 0 and "revoked 1 session(s)" in result.stderr
    assert manager(env).get(mine.token) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "args",
    [["sessions", "list", "--user", "nobody"], ["sessions", "revoke", "--user", "nobody"],
     ["sessions", "revoke", "--user", "nobody", "--id", "abc"], ["user", "show", "nobody"]],
    ids=["list", "revoke-all", "revoke-id", "show"],
)  # fmt: skip
def test_an_unknown_user_is_one_line_and_exit_1(env: dict[str, str], args: list[str]) -> None:
    create_user(env, "someone")
    result = run(env, *args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == ["no user 'nobody' (by name or id): see huihua user list"]


def test_sessions_of_an_id_the_accounts_database_does_not_know(env: dict[str, str]) -> None:
    """An app using huihua as a library has its own user ids: those still list and revoke."""
    theirs = manager(env).create(user_id="app-user-42", client="browser")
    result = run(env, "sessions", "list", "--user", "app-user-42")
    assert result.exit_code == 0 and theirs.id in result.stdout
    assert run(env, "sessions", "revoke", "--user", "app-user-42", "--id", theirs.id[:6]).exit_code == 0
    assert manager(env).get(theirs.token) is None  # type: ignore[arg-type]


def test_sessions_revoke_by_prefix(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    import huihua.core.manager

    uid = create_user(env, "frank")
    names = iter(["AbC1xxxxxxxxxxxxxxxxxx", "AbC2yyyyyyyyyyyyyyyyyy", "Zzzzzzzzzzzzzzzzzzzzzz"])
    monkeypatch.setattr(huihua.core.manager, "new_session_id", lambda: next(names))
    m = manager(env)
    first, second, third = (m.create(user_id=uid, client="browser") for _ in range(3))

    result = run(env, "sessions", "revoke", "--user", "frank", "--id", "AbC")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"session id 'AbC' is ambiguous: {first.id}, {second.id}; give more characters"
    ]
    assert all(m.get(s.token) is not None for s in (first, second, third))  # type: ignore[arg-type]

    result = run(env, "sessions", "revoke", "--user", "frank", "--id", "AbC2")
    assert result.exit_code == 0 and result.stderr.splitlines() == [f"revoked 1 session ({second.id})"]
    assert m.get(second.token) is None and m.get(first.token) is not None  # type: ignore[arg-type]

    result = run(env, "sessions", "revoke", "--user", "frank", "--id", "abc1")  # ids are case-sensitive
    assert result.exit_code == 1 and f"no live session abc1 for frank ({uid})" in result.stderr
    result = run(env, "sessions", "revoke", "--user", "frank", "--id", "")
    assert result.exit_code == 2 and "--id is empty" in result.stderr

    assert run(env, "sessions", "revoke", "--user", "frank").exit_code == 0  # the two left
    result = run(env, "sessions", "revoke", "--user", "frank")
    assert result.exit_code == 1 and result.stderr.splitlines() == [f"no live session for frank ({uid})"]


def test_sessions_list_json(env: dict[str, str]) -> None:
    uid = create_user(env, "grace")
    m = manager(env)
    s = m.create(user_id=uid, client="miniprogram", ip="10.0.0.9", user_agent="curl/8", data={"k": "v"})
    result = run(env, "sessions", "list", "--user", "grace", "--json")
    assert result.exit_code == 0
    (listed,) = json.loads(result.stdout)
    assert listed["id"] == s.id and listed["user_id"] == uid
    assert (
        listed["client"] == "miniprogram" and listed["ip"] == "10.0.0.9" and listed["user_agent"] == "curl/8"
    )
    assert listed["absolute_expires_at"] == s.absolute_expires_at.isoformat(timespec="seconds")
    assert listed["expires_at"] == s.expires_at.isoformat(timespec="seconds")
    assert s.token not in result.output and s.record.key not in result.output  # type: ignore[operator]
    assert "data" not in listed and '"v"' not in result.output
    assert json.loads(run(env, "sessions", "list", "--user", uid, "--json").stdout) == [listed]


# -- user list / show ----------------------------------------------------------------------------
def test_user_list_and_show(env: dict[str, str]) -> None:
    first = create_user(env, "heidi")
    run(env, "user", "create", "ivan", "--password", PASSWORD, "--email", "ivan@example.com")
    result = run(env, "user", "list")
    assert result.exit_code == 0 and "2 user(s)" in result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0][:3] == ["id", "username", "email"]
    assert [r[1] for r in rows[1:]] == ["heidi", "ivan"] and rows[1][0] == first
    assert "ivan@example.com" in result.stdout

    listed = json.loads(run(env, "user", "list", "--json").stdout)
    assert [u["username"] for u in listed] == ["heidi", "ivan"]
    assert listed[1]["email"] == "ivan@example.com" and listed[0]["has_password"] is True
    assert listed[0]["disabled"] is False

    for who in ("heidi", "Heidi", first):
        shown = run(env, "user", "show", who, "--json")
        assert shown.exit_code == 0 and json.loads(shown.stdout) == listed[0]
    text = run(env, "user", "show", "ivan")
    assert text.exit_code == 0
    assert "username:     ivan" in text.stdout and "email:        ivan@example.com" in text.stdout
    for output in (result.output, text.output, run(env, "user", "list", "--json").output):
        assert "argon2" not in output and "password_hash" not in output and PASSWORD not in output


def test_user_list_empty(env: dict[str, str]) -> None:
    assert json.loads(run(env, "user", "list", "--json").stdout) == []
    assert "0 user(s)" in run(env, "user", "list").stderr


# -- purge ---------------------------------------------------------------------------------------
def test_purge_deletes_only_expired_sessions(env: dict[str, str]) -> None:
    past = FakeClock(time.time() - 2 * 86400)
    old = manager(env, past)
    expired = [old.create(client="browser") for _ in range(5)]
    live = manager(env).create(client="browser")
    result = run(env, "purge", "--batch-size", "2")
    assert result.exit_code == 0
    assert "purged 5 expired session(s)" in result.stderr
    m = manager(env)
    assert m.get(live.token) is not None
    assert all(m.store.get(s.record.key) is None for s in expired)
    assert "purged 0 expired session(s)" in run(env, "purge").stderr


# -- doctor --------------------------------------------------------------------------------------
def test_doctor_healthy(env: dict[str, str]) -> None:
    result = run(env | {"HUIHUA_SERVICE_KEY": "a-service-key"}, "doctor")
    assert "✓ session store reachable: sqlite:///" in result.stderr
    assert "✓ accounts database reachable" in result.stderr
    assert "service key set" in result.stderr and "a-service-key" not in result.output
    assert "WeChat login not configured" in result.stderr
    assert result.exit_code == 0, result.stderr  # WeChat is optional: advice, not a failure


def test_doctor_advises_on_optional_settings(env: dict[str, str]) -> None:
    result = run(env, "doctor")
    assert result.exit_code == 0, result.stderr
    assert "HUIHUA_SERVICE_KEY" in result.stderr and "HUIHUA_WECHAT_APPID" in result.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_doctor_unreachable_store(env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    url = f"redis://:hunter2secret@127.0.0.1:{port}/0"
    result = run(
        env | {"HUIHUA_STORE": url, "HUIHUA_DATABASE": f"sqlite:///{tmp_path}/accounts.db"}, "doctor"
    )
    assert result.exit_code == 1
    assert (
        f"✗ session store redis://:***@127.0.0.1:{port}/0: cannot reach Redis at 127.0.0.1:{port} "
        "(connection refused): start Redis or fix HUIHUA_STORE\n"
    ) in result.stderr
    assert "hunter2secret" not in result.output


def test_doctor_bad_store_url(env: dict[str, str]) -> None:
    result = run(env | {"HUIHUA_STORE": "ftp://nowhere"}, "doctor")
    assert result.exit_code == 1 and "unknown store URL scheme" in result.stderr


def test_doctor_unreachable_wechat(env: dict[str, str]) -> None:
    port = free_port()
    wechat = {"HUIHUA_WECHAT_APPID": "wx1234567890abcdef", "HUIHUA_WECHAT_SECRET": "s3cr3t-wechat",
              "HUIHUA_WECHAT_API_BASE": f"http://127.0.0.1:{port}"}  # fmt: skip
    result = run(env | wechat, "doctor")
    assert result.exit_code == 1
    assert "✗ WeChat credentials accepted by" in result.stderr
    assert "s3cr3t-wechat" not in result.output


# -- configuration mistakes: one line each, never a traceback -----------------------------------
def bad_toml(tmp_path: Path) -> str:
    (tmp_path / "bad.toml").write_text('store = "memory://\n')
    return str(tmp_path / "bad.toml")


@pytest.mark.parametrize("command", ["serve", "doctor", "purge"])
@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [("HUIHUA_MAX_DATA_BYTES", "64k", "HUIHUA_MAX_DATA_BYTES='64k': expected a whole number"),
     ("HUIHUA_CONFIG", "{tmp}/missing.toml", "HUIHUA_CONFIG='{tmp}/missing.toml': no such file"),
     ("HUIHUA_CONFIG", "{bad_toml}", "HUIHUA_CONFIG='{tmp}/bad.toml': not valid TOML"),
     ("HUIHUA_TRUST_PROXY", "maybe", "HUIHUA_TRUST_PROXY='maybe': 'maybe' is not an IP address or network"),
     ("HUIHUA_COOKIE_SECURE", "maybe", "HUIHUA_COOKIE_SECURE='maybe': expected 1 or 0"),
     ("HUIHUA_STORE", "redis:/host", "HUIHUA_STORE='redis:/host': no '://' after the scheme; expected a store URL")],
    ids=["bytes-64k", "missing-config", "bad-toml", "trust-proxy-maybe", "cookie-secure-maybe", "store-one-slash"],
)  # fmt: skip
def test_a_bad_value_is_one_line(
    env: dict[str, str], tmp_path: Path, command: str, setting: str, value: str, expected: str
) -> None:
    tmp = str(tmp_path)
    value = value.format(tmp=tmp, bad_toml=bad_toml(tmp_path) if "bad_toml" in value else "")
    args = [command, "--port", str(free_port())] if command == "serve" else [command]
    result = run(env | {setting: value}, *args)  # an exception would fail the test: catch_exceptions=False
    assert result.exit_code == (1 if command == "doctor" else 2), result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected.format(tmp=tmp) in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("extra", "toml", "expected"),
    [({"HUIHUA_STOR": "memory://"}, "", "HUIHUA_STOR is not a setting; did you mean HUIHUA_STORE?"),
     ({"HUIHUA_SERVICEKEY": "k"}, "", "HUIHUA_SERVICEKEY is not a setting; did you mean HUIHUA_SERVICE_KEY?"),
     ({}, 'stor = "memory://"\n', "'stor' is not a setting; did you mean store?")],
    ids=["env-stor", "env-servicekey", "toml-stor"],
)  # fmt: skip
def test_doctor_fails_on_unknown_names(env: dict[str, str], tmp_path: Path, extra: dict[str, str], toml: str,
                                       expected: str) -> None:  # fmt: skip
    if toml:
        (tmp_path / "huihua.toml").write_text(toml)
        extra = extra | {"HUIHUA_CONFIG": str(tmp_path / "huihua.toml")}
    result = run(env | extra, "doctor")
    assert result.exit_code == 1, result.stderr
    assert next(line for line in result.stderr.splitlines() if expected in line).startswith("✗ ")


def test_serve_warns_of_unknown_names(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    ran: list[object] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: ran.append(app))
    result = run(env | {"HUIHUA_STOR": "memory://"}, "serve", "--port", str(free_port()))
    assert result.exit_code == 0, result.output
    assert "warning: HUIHUA_STOR is not a setting; did you mean HUIHUA_STORE?" in result.stderr
    assert len(ran) == 1  # a warning, not a refusal: it still serves


def test_doctor_shows_where_each_setting_came_from(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "huihua.toml").write_text("max_data_bytes = 1000\n")
    result = run(env | {"HUIHUA_CONFIG": str(tmp_path / "huihua.toml"), "HUIHUA_SERVICE_KEY": "not-shown"},
                 "doctor")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    rows = {
        line.split()[0]: line.split() for line in result.stderr.splitlines() if line.startswith("  HUIHUA_")
    }
    assert rows["HUIHUA_STORE"][1:] == [env["HUIHUA_STORE"], "(env)"]
    assert rows["HUIHUA_MAX_DATA_BYTES"][1:] == ["1000", "(file", f"{tmp_path}/huihua.toml)"]
    assert rows["HUIHUA_SWEEP_INTERVAL"][1:] == ["60", "(default)"]
    assert rows["HUIHUA_SERVICE_KEY"][1:] == ["set", "(env)"] and "not-shown" not in result.output


def test_doctor_says_where_the_secret_key_is(env: dict[str, str], tmp_path: Path) -> None:
    first = run(env, "doctor")
    assert f"secret key: will be generated into {tmp_path}/huihua.secret" in first.stderr
    (tmp_path / "huihua.secret").write_text("k" * 43)
    second = run(env, "doctor")
    assert second.exit_code == 0, second.stderr
    assert f"✓ secret key: read from {tmp_path}/huihua.secret" in second.stderr
    assert "will be generated" not in second.stderr
    (tmp_path / "huihua.secret").write_text("short")
    third = run(env, "doctor")
    assert third.exit_code == 1 and "✗ secret key:" in third.stderr and "short secret" in third.stderr


# -- serve ---------------------------------------------------------------------------------------
@pytest.fixture
def serve_process(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    full = {k: v for k, v in os.environ.items() if not k.startswith("HUIHUA_")} | env
    full["HUIHUA_STORE"] = f"sqlite:///{tmp_path}/served.db"
    full["HUIHUA_SERVICE_KEY"] = "not-for-printing"
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "huihua"), "serve", "--port", str(port)],
        env=full, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    yield proc, port
    if proc.poll() is None:
        proc.terminate()
        proc.wait(15)
    assert proc.stdout and proc.stderr
    proc.stdout.close()
    proc.stderr.close()


@pytest.mark.slow
def test_serve_prints_where_it_listens(
    serve_process: tuple[subprocess.Popen[str], int], tmp_path: Path
) -> None:
    import httpx

    proc, port = serve_process
    assert proc.stderr
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any("WeChat" in line for line in lines):
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
    text = "".join(lines)
    assert f"listening on http://127.0.0.1:{port}" in text
    assert f"store     sqlite:///{tmp_path}/served.db" in text
    assert f"API docs  http://127.0.0.1:{port}/docs" in text
    assert "not-for-printing" not in text
    for _ in range(200):
        try:
            r = httpx.get(f"http://127.0.0.1:{port}/docs", timeout=2)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    assert r.status_code == 200
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json() == {"status": "ok"}
    proc.terminate()
    proc.wait(15)


def test_serve_refuses_an_unusable_store(env: dict[str, str]) -> None:
    result = run(env | {"HUIHUA_STORE": "ftp://nowhere"}, "serve", "--port", str(free_port()))
    assert result.exit_code == 2
    assert "cannot start" in result.stderr and "HUIHUA_STORE" in result.stderr


@pytest.fixture
def password_redis(tmp_path: Path) -> Iterator[int]:
    """A private redis-server on a free port that wants the password hunter2secret."""
    import redis

    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--requirepass", "hunter2secret",
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        client = redis.Redis(port=port, password="hunter2secret", socket_timeout=1)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        client.close()
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def huihua(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """`huihua ARGS` as a real process, stdout and stderr together."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("HUIHUA_")} | env
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "huihua"), *args],
        env=full, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def read_until(proc: subprocess.Popen[str], needle: str, timeout: float = 60) -> str:
    """What the process printed up to the line with `needle` (or its end); then it is stopped."""
    assert proc.stdout
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not any(needle in line for line in lines):
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    return "".join(lines) + out


@pytest.mark.slow
def test_serve_masks_store_passwords(tmp_path: Path, password_redis: int) -> None:
    """Secrets are never printed: a password in the store URL shows as ***."""
    env = {"HUIHUA_STORE": f"redis://:hunter2secret@127.0.0.1:{password_redis}/0", "NO_COLOR": "1",
           "HUIHUA_DATABASE": f"sqlite:///{tmp_path}/accounts.db", "COLUMNS": "200"}  # fmt: skip
    text = read_until(huihua("serve", "--port", str(free_port()), env=env, cwd=tmp_path), "WeChat")
    assert "store     redis://:***@127.0.0.1" in text, text
    assert "hunter2secret" not in text
    assert "accounts stay in a local SQLite file" not in text  # HUIHUA_DATABASE is set


# -- fail fast: the store, the accounts database and the ports are checked before the banner ------
@pytest.fixture
def missing_database() -> Iterator[str]:
    """The name of a PostgreSQL database that does not exist (dropped again if a test made it)."""
    import uuid

    import psycopg

    name = f"huihua_c15_missing_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def own_database(missing_database: str) -> str:
    """A PostgreSQL database of this test's own (dropped at the end)."""
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {missing_database}")
    return f"postgresql://postgres@127.0.0.1:5432/{missing_database}"


def refused(proc: subprocess.Popen[str]) -> tuple[int, list[str]]:
    out, _ = proc.communicate(timeout=60)
    return proc.returncode, out.strip().splitlines()


@pytest.mark.slow
@pytest.mark.parametrize("setting", ["HUIHUA_STORE", "HUIHUA_DATABASE"])
def test_serve_names_a_missing_postgres_database(tmp_path: Path, missing_database: str, setting: str) -> None:
    url = f"postgresql://postgres:pw-not-shown@127.0.0.1:5432/{missing_database}"
    env = {"HUIHUA_STORE": f"sqlite:///{tmp_path}/s.db", setting: url, "NO_COLOR": "1", "COLUMNS": "300"}
    code, lines = refused(huihua("serve", "--port", str(free_port()), env=env, cwd=tmp_path))
    what = "session store" if setting == "HUIHUA_STORE" else "accounts database"
    assert code == 2
    assert lines == [
        f"error: cannot start: {what} postgresql://postgres:***@127.0.0.1:5432/{missing_database}: "
        f'database "{missing_database}" does not exist: create it with createdb -U postgres {missing_database}'
    ]


@pytest.mark.slow
def test_serve_names_a_redis_that_is_down(tmp_path: Path) -> None:
    port = free_port()
    env = {"HUIHUA_STORE": f"redis://127.0.0.1:{port}/0", "NO_COLOR": "1", "COLUMNS": "300"}
    code, lines = refused(huihua("serve", "--port", str(free_port()), env=env, cwd=tmp_path))
    assert code == 2
    assert lines == [
        f"error: cannot start: session store redis://127.0.0.1:{port}/0: cannot reach Redis at "
        f"127.0.0.1:{port} (connection refused): start Redis or fix HUIHUA_STORE"
    ]


@pytest.mark.parametrize(
    ("url", "expected"),
    [("redis://127.0.0.1:{port}/0", "Redis at 127.0.0.1:{port} needs a password: put it in HUIHUA_STORE"),
     ("redis://:not-the-password@127.0.0.1:{port}/0", "Redis at 127.0.0.1:{port} refused the password"),
     ("redis://:hunter2secret@127.0.0.1:{port}/99", "Redis at 127.0.0.1:{port} has no database 99")],
    ids=["no-password", "wrong-password", "no-such-db"],
)  # fmt: skip
def test_doctor_says_why_redis_refuses(
    env: dict[str, str], password_redis: int, url: str, expected: str
) -> None:
    url = url.format(port=password_redis)
    result = run(env | {"HUIHUA_STORE": url, "HUIHUA_DATABASE": env["HUIHUA_STORE"]}, "doctor")
    assert result.exit_code == 1
    assert f"✗ session store {url.replace(':not-the-password@', ':***@').replace(':hunter2secret@', ':***@')}: " \
        f"{expected.format(port=password_redis)}" in result.stderr  # fmt: skip
    assert "not-the-password" not in result.output and "hunter2secret" not in result.output


def test_doctor_names_a_missing_postgres_database(env: dict[str, str], missing_database: str) -> None:
    url = f"postgresql://postgres@127.0.0.1:5432/{missing_database}"
    result = run(env | {"HUIHUA_DATABASE": url}, "doctor")
    assert result.exit_code == 1
    assert (
        f'✗ accounts database {url}: database "{missing_database}" does not exist: '
        f"create it with createdb -U postgres {missing_database}\n"
    ) in result.stderr
    assert "PoolTimeout" not in result.output
    assert "✓ session store reachable" in result.stderr


def test_doctor_on_postgres_and_the_local_accounts_warning(env: dict[str, str], own_database: str) -> None:
    result = run(env | {"HUIHUA_STORE": own_database}, "doctor")
    assert f"✓ session store reachable: {own_database}" in result.stderr
    assert "✓ accounts database reachable: sqlite:///./huihua.db" in result.stderr
    assert (
        "! accounts stay in a local SQLite file (sqlite:///./huihua.db) while sessions are in PostgreSQL: "
        "every instance would have its own accounts; set HUIHUA_DATABASE (or --database)"
    ) in result.stderr
    assert result.exit_code == 0, result.stderr  # advice, not a failure
    both = run(env | {"HUIHUA_STORE": own_database, "HUIHUA_DATABASE": own_database}, "doctor")
    assert both.exit_code == 0, both.stderr
    assert f"✓ accounts database reachable: {own_database}" in both.stderr
    assert "accounts stay" not in both.stderr


@pytest.fixture
def redis13() -> Iterator[str]:
    import redis

    url = "redis://127.0.0.1:6379/13"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.mark.slow
def test_serve_warns_when_accounts_stay_local(tmp_path: Path, redis13: str) -> None:
    env = {"HUIHUA_STORE": redis13, "NO_COLOR": "1", "COLUMNS": "300"}
    text = read_until(huihua("serve", "--port", str(free_port()), env=env, cwd=tmp_path), "accounts stay")
    assert "listening on" in text
    assert (
        "warning: accounts stay in a local SQLite file (sqlite:///./huihua.db) while sessions are in Redis: "
        "every instance would have its own accounts; set HUIHUA_DATABASE (or --database) to a postgresql:// "
        "URL they all share"
    ) in text


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_refuses_a_busy_port_before_the_banner(tmp_path: Path, busy_port: int) -> None:
    env = {"HUIHUA_STORE": f"sqlite:///{tmp_path}/s.db", "NO_COLOR": "1", "COLUMNS": "300"}
    code, lines = refused(huihua("serve", "--port", str(busy_port), env=env, cwd=tmp_path))
    assert code == 2
    assert lines == [
        f"error: cannot start: port {busy_port} is in use (127.0.0.1:{busy_port}): stop what listens there "
        "or choose another --port"
    ]


@pytest.mark.slow
def test_serve_never_replaces_a_busy_emulator_port(tmp_path: Path, busy_port: int) -> None:
    env = {"HUIHUA_STORE": f"sqlite:///{tmp_path}/s.db", "NO_COLOR": "1", "COLUMNS": "300"}
    args = ["serve", "--port", str(free_port()), "--emulator", "--emulator-port", str(busy_port)]
    code, lines = refused(huihua(*args, env=env, cwd=tmp_path))
    assert code == 2
    assert lines == [
        f"error: cannot start: port {busy_port} is in use (127.0.0.1:{busy_port}): stop what listens there "
        "or choose another --emulator-port"
    ]  # neither the emulator nor the service announced


def test_emulator_refuses_a_busy_port(busy_port: int) -> None:
    result = run({"NO_COLOR": "1", "COLUMNS": "300"}, "emulator", "--port", str(busy_port))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: cannot start the emulator: port {busy_port} is in use (127.0.0.1:{busy_port}): stop what "
        "listens there or choose another --port"
    ]
