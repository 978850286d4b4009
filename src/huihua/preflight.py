"""Checks `huihua serve` and `huihua doctor` make before anything listens: can the session store
and the accounts database be used, is a port free. Each problem is one line naming the real cause
and what fixes it (`createdb huihua`, start Redis, another --port), never a driver's exception
name such as `PoolTimeout`."""

from __future__ import annotations

import errno
import os
import re
import socket
from pathlib import Path
from urllib.parse import SplitResult, unquote, urlsplit

from .config import Settings

__all__ = ["check_database", "check_port", "check_store", "local_accounts_warning"]

POSTGRES = ("postgres", "postgresql")
REDIS = ("redis", "rediss", "unix", "redis+cluster", "redis+sentinel")
TIMEOUT = 3  # seconds: a server that does not answer by then is reported, not waited for


def check_store(url: str, setting: str = "HUIHUA_STORE") -> str | None:
    """None when the session store at `url` answers; else one line saying why not and what to do."""
    scheme = urlsplit(url).scheme
    if scheme in POSTGRES:
        return _postgres(url, setting)
    if scheme in ("redis", "rediss", "unix"):
        return _redis(url, setting)
    if scheme == "sqlite":
        return _sqlite(url, setting) or _open(url, setting, store=True)
    if scheme in ("redis+cluster", "redis+sentinel"):
        kind = "Redis Cluster" if scheme == "redis+cluster" else "Redis Sentinel"
        where = urlsplit(url).netloc.rpartition("@")[2]
        if (exc := _failure(url, store=True)) is not None:
            return f"cannot reach {kind} at {where} ({_network_reason(exc)}): start Redis or fix {setting}"
        return None
    return _open(url, setting, store=True)  # memory://


def check_database(url: str, setting: str = "HUIHUA_DATABASE") -> str | None:
    """None when the accounts database at `url` answers; else one line (as check_store)."""
    scheme = urlsplit(url).scheme
    if scheme in POSTGRES:
        return _postgres(url, setting)
    if scheme == "sqlite":
        return _sqlite(url, setting) or _open(url, setting, store=False)
    return f"the accounts database must be sqlite:// or postgresql://, not {scheme!r}: fix {setting}"


def local_accounts_warning(settings: Settings) -> str | None:
    """Sessions in a shared store (Redis, PostgreSQL) but accounts in this machine's SQLite file:
    a second instance would see other accounts. Say which setting puts them beside the sessions."""
    scheme = urlsplit(settings.store).scheme
    if settings.database or (scheme not in REDIS and scheme not in POSTGRES):
        return None
    kind = "PostgreSQL" if scheme in POSTGRES else "Redis"
    return (
        f"accounts stay in a local SQLite file ({settings.database_url}) while sessions are in {kind}: "
        "every instance would have its own accounts; set HUIHUA_DATABASE (or --database) to a "
        "postgresql:// URL they all share"
    )


def check_port(host: str, port: int, option: str = "--port") -> str | None:
    """None when `host:port` can be listened on (bound as uvicorn binds it, then let go)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            where = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} is in use ({where}): stop what listens there or choose another {option}"
            if exc.errno == errno.EACCES:
                return f"not allowed to listen on {where} (a port below 1024?): choose another {option}"
            reason = exc.strerror or str(exc)
            return f"cannot listen on {where} ({reason}): fix --host or choose another {option}"
    return None


# -- PostgreSQL ----------------------------------------------------------------------------------
def _postgres(url: str, setting: str) -> str | None:
    try:
        import psycopg
    except ImportError:
        return f"PostgreSQL support is not installed: pip install 'huihua[postgres]' (for {setting})"
    parts = urlsplit(url)
    where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
    try:
        psycopg.connect(url, connect_timeout=TIMEOUT, autocommit=True).close()
    except psycopg.Error as exc:
        return _postgres_reason(str(exc), parts, where, setting)
    return None


def _postgres_reason(text: str, parts: SplitResult, where: str, setting: str) -> str:
    detail = text.split("FATAL:", 1)[-1].strip().splitlines()[0] if "FATAL:" in text else ""
    if found := re.search(r'database "([^"]+)" does not exist', text):
        name = found.group(1)
        return f'database "{name}" does not exist: create it with {_pg_command("createdb", parts)} {name}'
    if found := re.search(r'role "([^"]+)" does not exist', text):
        name = found.group(1)
        return (
            f'PostgreSQL role "{name}" does not exist: create it with '
            f"{_pg_command('createuser', parts, user=False)} {name}, or fix the user in {setting}"
        )
    if "password authentication failed" in text or "no password supplied" in text:
        why = detail or "password"
        return f"PostgreSQL at {where} refused the login ({why}): fix the user or password in {setting}"
    lower = text.lower()
    for needle, reason in (
        ("connection refused", "connection refused"),
        ("timeout expired", "timed out"),
        ("could not translate host name", "host not found"),
        ("no such file or directory", "no server socket"),
        ("network is unreachable", "network unreachable"),
    ):
        if needle in lower:
            return f"cannot reach PostgreSQL at {where} ({reason}): start PostgreSQL or fix {setting}"
    line = detail or text.strip().splitlines()[0]
    return f"PostgreSQL at {where} refused the connection ({line}): fix {setting}"


def _pg_command(tool: str, parts: SplitResult, *, user: bool = True) -> str:
    """`createdb` with the -h/-p/-U the URL implies (none for the local default server)."""
    host, port, username = parts.hostname, parts.port, parts.username if user else None
    words = [tool]
    if host and host not in ("localhost", "127.0.0.1", "::1"):
        words += ["-h", host]
    if port and port != 5432:
        words += ["-p", str(port)]
    if username:
        words += ["-U", unquote(username)]
    return " ".join(words)


# -- Redis ---------------------------------------------------------------------------------------
def _redis(url: str, setting: str) -> str | None:
    try:
        import redis
    except ImportError:
        return f"Redis support is not installed: pip install 'huihua[redis]' (for {setting})"
    parts = urlsplit(url)
    where = parts.path if parts.scheme == "unix" else f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
    client = redis.Redis.from_url(url, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return _redis_reason(exc, parts, where, setting)
    finally:
        client.close()
    return None


def _redis_reason(exc: Exception, parts: SplitResult, where: str, setting: str) -> str:
    import redis

    text = str(exc)
    if isinstance(exc, redis.AuthenticationError) and "without any password configured" in text:
        return f"Redis at {where} has no password but {setting} gives one: remove it from the URL"
    if "NOAUTH" in text or "Authentication required" in text:
        return f"Redis at {where} needs a password: put it in {setting} (redis://:PASSWORD@host:port/0)"
    if isinstance(exc, redis.AuthenticationError) or "WRONGPASS" in text:
        return f"Redis at {where} refused the password ({text}): fix the password in {setting}"
    if "DB index is out of range" in text:
        number = parts.path.strip("/")
        return f"Redis at {where} has no database {number}: choose a smaller one in {setting}"
    if isinstance(exc, redis.ResponseError):
        return f"Redis at {where} refused the connection ({text}): fix {setting}"
    return f"cannot reach Redis at {where} ({_network_reason(exc)}): start Redis or fix {setting}"


def _network_reason(exc: BaseException) -> str:
    text = str(exc).lower()
    for needle, reason in (
        ("connection refused", "connection refused"),
        ("timeout", "timed out"),
        ("timed out", "timed out"),
        ("name or service not known", "host not found"),
        ("nodename nor servname", "host not found"),
        ("temporary failure in name resolution", "host not found"),
        ("no such file or directory", "no server socket"),
        ("network is unreachable", "network unreachable"),
    ):
        if needle in text:
            return reason
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# -- SQLite and the rest -------------------------------------------------------------------------
def _sqlite(url: str, setting: str) -> str | None:
    """The folder of a SQLite file must exist and be writable (the file is created in it)."""
    from .stores import sqlite_path

    path = Path(sqlite_path(url)[0])
    folder = path.parent.resolve()
    if not folder.is_dir():
        return (
            f"folder {folder} for the SQLite file {path.name} does not exist: "
            f"create it with mkdir -p {folder}, or fix {setting}"
        )
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return (
            f"SQLite file {path} cannot be read and written by this user: fix its owner or mode, or {setting}"
        )
    if not path.exists() and not os.access(folder, os.W_OK | os.X_OK):
        return (
            f"folder {folder} is not writable by this user, so the SQLite file cannot be created: "
            f"fix its owner or mode, or {setting}"
        )
    return None


def _open(url: str, setting: str, *, store: bool) -> str | None:
    if (exc := _failure(url, store=store)) is None:
        return None
    what = "session store" if store else "accounts database"
    return f"the {what} cannot be used ({exc}): fix {setting}"


def _failure(url: str, *, store: bool) -> Exception | None:
    """What opening and pinging the store (or the accounts database) at `url` raised, if anything."""
    from .core.errors import HuihuaError

    try:
        if store:
            from .stores import store_from_url

            opened = store_from_url(url)
            try:
                opened.ping()
            finally:
                close = getattr(opened, "close", None)
                if close is not None and urlsplit(url).scheme != "memory":
                    close()
        else:
            from .accounts.database import database_from_url

            db = database_from_url(url)
            try:
                db.execute("SELECT 1")
            finally:
                db.close()
    except (HuihuaError, ValueError, ImportError, OSError) as exc:
        return exc
    return None
