"""Users of the app's own accounts (WeChat-only users have no username or password)."""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..core.errors import InvalidUsername
from .database import Database

MIN_USERNAME_CHARS = 2
MAX_USERNAME_CHARS = 64
USERNAME_RULE = (
    f"{MIN_USERNAME_CHARS} to {MAX_USERNAME_CHARS} characters (counted after NFKC normalisation and "
    "case folding): letters of any script, digits, and . @ + - _"
)
_USERNAME_RE = re.compile(rf"\A[\w.@+-]{{{MIN_USERNAME_CHARS},{MAX_USERNAME_CHARS}}}\Z")

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS huihua_user (
        id TEXT PRIMARY KEY,
        username TEXT UNIQUE,
        email TEXT,
        phone TEXT,
        password_hash TEXT,
        disabled INTEGER NOT NULL DEFAULT 0,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    )""",
)

_COLUMNS = "id, username, email, phone, password_hash, disabled, created_at"


def normalize_username(raw: str) -> str:
    """Length first, then NFKC and case folding: unbounded input is never normalised. The rule
    (USERNAME_RULE) is checked on the normalised name, so `张三`, `Zoë` and `ab` are names."""
    if len(raw) > MAX_USERNAME_CHARS * 4:
        raise InvalidUsername(f"usernames are at most {MAX_USERNAME_CHARS} characters")
    name = unicodedata.normalize("NFKC", raw).strip().casefold()
    if not _USERNAME_RE.match(name):
        raise InvalidUsername(f"usernames are {USERNAME_RULE}")
    return name


@dataclass(frozen=True, slots=True)
class User:
    id: str
    username: str | None
    email: str | None
    phone: str | None
    password_hash: str | None
    disabled: bool
    created_at: float

    def public(self) -> dict[str, Any]:
        """What clients may see: never the password hash."""
        return {
            "id": self.id,
            "username": self.username,
            "email": self.email,
            "phone": self.phone,
            "created_at": datetime.fromtimestamp(self.created_at, UTC).isoformat(),
        }


def _user(row: tuple[Any, ...]) -> User:
    uid, username, email, phone, pw, disabled, created = row
    return User(uid, username, email, phone, pw, bool(disabled), created)


def new_user_id() -> str:
    return "u_" + secrets.token_urlsafe(12)


class UserRepository:
    def __init__(self, db: Database) -> None:
        self.db = db
        for statement in SCHEMA:
            db.execute(statement)

    def insert(self, user: User, now: float) -> None:
        self.db.execute(
            f"INSERT INTO huihua_user ({_COLUMNS}, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                user.id,
                user.username,
                user.email,
                user.phone,
                user.password_hash,
                int(user.disabled),
                user.created_at,
                now,
            ),
        )

    def by_id(self, user_id: str) -> User | None:
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM huihua_user WHERE id = ?", (user_id,))
        return _user(rows[0]) if rows else None

    def by_username(self, username: str) -> User | None:
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM huihua_user WHERE username = ?", (username,))
        return _user(rows[0]) if rows else None

    def set_password_hash(self, user_id: str, password_hash: str, now: float) -> None:
        self.db.execute(
            "UPDATE huihua_user SET password_hash = ?, updated_at = ? WHERE id = ?",
            (password_hash, now, user_id),
        )

    def set_disabled(self, user_id: str, disabled: bool, now: float) -> bool:
        rows = self.db.execute(
            "UPDATE huihua_user SET disabled = ?, updated_at = ? WHERE id = ? RETURNING id",
            (int(disabled), now, user_id),
        )
        return bool(rows)

    def set_phone(self, user_id: str, phone: str, now: float) -> None:
        self.db.execute(
            "UPDATE huihua_user SET phone = ?, updated_at = ? WHERE id = ?", (phone, now, user_id)
        )

    def delete_placeholder(self, user_id: str) -> None:
        """Delete a WeChat user made for a first login that a parallel one won: only while it
        has no username, no password and no identity, so no real account can go this way."""
        self.db.execute(
            "DELETE FROM huihua_user WHERE id = ? AND username IS NULL AND password_hash IS NULL"
            " AND NOT EXISTS (SELECT 1 FROM huihua_wechat_identity WHERE user_id = ?)",
            (user_id, user_id),
        )

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM huihua_user")[0][0])

    def all(self) -> list[User]:
        """Every user, oldest first (`huihua user list`)."""
        rows = self.db.execute(f"SELECT {_COLUMNS} FROM huihua_user ORDER BY created_at, id")
        return [_user(row) for row in rows]
