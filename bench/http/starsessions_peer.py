"""Peer (e): FastAPI + starsessions on Redis, with huihua's three routes.

- Sessions: starsessions' SessionMiddleware + RedisStore (redis.asyncio), cookie transport (the
  only one starsessions has); the session holds the user id, as huihua's does.
- Users: one SQLite table read inline on the event loop (as huihua reads its accounts).
- Login: argon2id with huihua's parameters (m=19 MiB, t=2, p=1) verified in a worker thread
  (as huihua does), then `regenerate_session_id` (rotation on login).

Environment: BENCH_REDIS_URL (default redis://127.0.0.1:6379/9), BENCH_USERS_DB (a SQLite path),
BENCH_USERNAME / BENCH_PASSWORD (the account created at start-up if missing).
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
from datetime import UTC, datetime
from typing import Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import VerificationError
from fastapi import FastAPI, Request
from pydantic import BaseModel, Field
from redis.asyncio import Redis
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starsessions import SessionMiddleware, load_session, regenerate_session_id
from starsessions.stores.redis import RedisStore

# huihua's hasher (src/huihua/accounts/passwords.py), parameter for parameter.
hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16,
                        type=Type.ID)  # fmt: skip
DUMMY_HASH = hasher.hash("dummy-password-for-timing")

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
USERS_DB = os.environ.get("BENCH_USERS_DB", "starsessions_users.sqlite3")
_local = threading.local()


def db() -> sqlite3.Connection:
    conn = getattr(_local, "db", None)
    if conn is None:
        conn = sqlite3.connect(USERS_DB, timeout=5.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        _local.db = conn
    return conn


def _ensure_user() -> None:
    conn = db()
    conn.execute("CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, username TEXT UNIQUE,"
                 " email TEXT, phone TEXT, password_hash TEXT, created_at REAL)")  # fmt: skip
    username = os.environ.get("BENCH_USERNAME", "bench")
    if conn.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone() is None:
        password = os.environ.get("BENCH_PASSWORD", "bench-password-1")
        conn.execute("INSERT OR IGNORE INTO users VALUES (?, ?, NULL, NULL, ?, ?)",
                     ("u_" + secrets.token_urlsafe(12), username, hasher.hash(password),
                      datetime.now(UTC).timestamp()))  # fmt: skip


_ensure_user()
_COLUMNS = "id, username, email, phone, password_hash, created_at"


def user_public(row: tuple[Any, ...]) -> dict[str, Any]:
    return {"id": row[0], "username": row[1], "email": row[2], "phone": row[3],
            "created_at": datetime.fromtimestamp(row[5], UTC).isoformat()}  # fmt: skip


def session_public(request: Request) -> dict[str, Any]:
    meta = request.scope["session_handler"].metadata or {}

    def iso(value: float | None) -> str | None:
        return datetime.fromtimestamp(value, UTC).isoformat() if value else None

    created = meta.get("created")
    expires = created + meta.get("lifetime", 0) if created else None
    return {"id": None, "client": "browser", "created_at": iso(created),
            "last_seen_at": iso(meta.get("last_access")), "idle_expires_at": None,
            "expires_at": iso(expires)}  # fmt: skip


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


class LoginIn(BaseModel):
    username: str = Field(max_length=256)
    password: str = Field(max_length=1024)


class DataPatchIn(BaseModel):
    incr: dict[str, int] | None = None


app = FastAPI()
app.add_middleware(SessionMiddleware, store=RedisStore(connection=Redis.from_url(REDIS_URL)),
                   lifetime=30 * 86400, cookie_https_only=False)  # fmt: skip


@app.get("/v1/auth/me")
async def me(request: Request) -> JSONResponse:
    await load_session(request)
    user_id = request.session.get("user_id")
    if user_id is None:
        return error(401, "not_authenticated", "log in first")
    row = db().execute(f"SELECT {_COLUMNS} FROM users WHERE id = ?", (user_id,)).fetchone()
    if row is None:
        return error(401, "session_revoked", "no such user")
    return JSONResponse({"user": user_public(row), "session": session_public(request)})


@app.patch("/v1/session/data")
async def change_data(body: DataPatchIn, request: Request) -> JSONResponse:
    """Read the whole session, change it, write the whole blob back (last writer wins)."""
    await load_session(request)
    for key, by in (body.incr or {}).items():
        request.session[key] = int(request.session.get(key, 0)) + by
    return JSONResponse({"data": {k: v for k, v in request.session.items() if k != "user_id"}})


@app.post("/v1/auth/login")
async def login(body: LoginIn, request: Request) -> JSONResponse:
    await load_session(request)
    row = db().execute(f"SELECT {_COLUMNS} FROM users WHERE username = ?",
                       (body.username.casefold(),)).fetchone()  # fmt: skip

    def verify() -> bool:
        try:
            return hasher.verify(row[4] if row else DUMMY_HASH, body.password)
        except VerificationError:
            return False

    if not await run_in_threadpool(verify) or row is None:
        return error(401, "invalid_credentials", "the username or password is wrong")
    regenerate_session_id(request)
    request.session.clear()
    request.session["user_id"] = row[0]
    return JSONResponse({"user": user_public(row), "session": session_public(request)})
