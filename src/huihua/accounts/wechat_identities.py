"""WeChat identities: one row per (appid, openid), tied to a user; the session_key sealed.

Users are keyed by (appid, openid), never a bare openid, so one WeChat user in two mini
programs can never be mistaken for the other (ASVS 6.8.1); the unionid is kept for linking.
Each row also has a random public id, so its owner can see and remove it (ASVS 7.5.1) without
the openid ever leaving the server.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .database import Database

SCHEMA = """CREATE TABLE IF NOT EXISTS huihua_wechat_identity (
    appid TEXT NOT NULL,
    openid TEXT NOT NULL,
    unionid TEXT,
    user_id TEXT NOT NULL,
    session_key_sealed TEXT,
    profile TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    public_id TEXT,
    bound_at DOUBLE PRECISION,
    last_used_at DOUBLE PRECISION,
    PRIMARY KEY (appid, openid)
)"""
INDEX = "CREATE INDEX IF NOT EXISTS huihua_wechat_identity_user ON huihua_wechat_identity (user_id)"
PUBLIC_ID_INDEX = (
    "CREATE UNIQUE INDEX IF NOT EXISTS huihua_wechat_identity_public_id ON huihua_wechat_identity (public_id)"
)
# columns added after the first release: existing databases get them at start
_ADDED = (("public_id", "TEXT"), ("bound_at", "DOUBLE PRECISION"), ("last_used_at", "DOUBLE PRECISION"))


def new_identity_id() -> str:
    return "wi_" + secrets.token_urlsafe(12)


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None


@dataclass(frozen=True, slots=True)
class WeChatIdentity:
    appid: str
    openid: str
    unionid: str | None
    user_id: str
    session_key_sealed: str | None  # never leaves the server; unsealed only to decrypt or sign
    public_id: str | None = None  # as read back (an upsert makes one for a new row itself)


@dataclass(frozen=True, slots=True)
class LinkedIdentity:
    """What the owner sees of an identity: no openid, no unionid, no session_key."""

    id: str
    appid: str
    bound_at: float
    last_used_at: float | None  # None: not used since it was recorded (rows older than the column)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "provider": "wechat",
            "appid": self.appid,
            "bound_at": _iso(self.bound_at),
            "last_used_at": _iso(self.last_used_at),
        }


def _identity(row: tuple[Any, ...]) -> WeChatIdentity:
    return WeChatIdentity(*row)


_COLUMNS = "appid, openid, unionid, user_id, session_key_sealed"
_READ = _COLUMNS + ", public_id"


class WeChatIdentities:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._migrate()

    def _migrate(self) -> None:
        """Create the table, or bring one made before public ids and timestamps up to date
        (idempotent; safe when several workers start at once)."""
        with self.db.transaction() as cur:
            self.db.lock_schema(cur)
            cur.execute(SCHEMA)
            cur.execute(INDEX)
            for column, declaration in _ADDED:
                self.db.add_column(cur, "huihua_wechat_identity", column, declaration)
            for appid, openid in cur.execute(
                "SELECT appid, openid FROM huihua_wechat_identity WHERE public_id IS NULL"
            ):
                cur.execute(
                    "UPDATE huihua_wechat_identity SET public_id = ? WHERE appid = ? AND openid = ?",
                    (new_identity_id(), appid, openid),
                )
            cur.execute("UPDATE huihua_wechat_identity SET bound_at = created_at WHERE bound_at IS NULL")
            cur.execute(PUBLIC_ID_INDEX)

    def find(self, appid: str, openid: str) -> WeChatIdentity | None:
        rows = self.db.execute(
            f"SELECT {_READ} FROM huihua_wechat_identity WHERE appid = ? AND openid = ?", (appid, openid)
        )
        return _identity(rows[0]) if rows else None

    def of_user(self, appid: str, user_id: str) -> WeChatIdentity | None:
        rows = self.db.execute(
            f"SELECT {_READ} FROM huihua_wechat_identity WHERE appid = ? AND user_id = ?", (appid, user_id)
        )
        return _identity(rows[0]) if rows else None

    def upsert(self, identity: WeChatIdentity, now: float) -> None:
        """Record a WeChat login with this identity (the login calls this every time, so it is
        also what keeps `last_used_at`). An existing row keeps its user and public id."""
        self.db.execute(
            f"INSERT INTO huihua_wechat_identity ({_COLUMNS}, created_at, updated_at, public_id,"
            " bound_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (appid, openid) DO UPDATE SET"
            " unionid = COALESCE(excluded.unionid, huihua_wechat_identity.unionid),"
            " session_key_sealed = excluded.session_key_sealed, updated_at = excluded.updated_at,"
            " last_used_at = excluded.last_used_at",
            (
                identity.appid,
                identity.openid,
                identity.unionid,
                identity.user_id,
                identity.session_key_sealed,
                now,
                now,
                new_identity_id(),
                now,
                now,
            ),
        )

    def linked(self, user_id: str) -> list[LinkedIdentity]:
        rows = self.db.execute(
            "SELECT public_id, appid, bound_at, last_used_at FROM huihua_wechat_identity"
            " WHERE user_id = ? ORDER BY bound_at, public_id",
            (user_id,),
        )
        return [LinkedIdentity(pid, appid, float(bound), used) for pid, appid, bound, used in rows]

    def unlink(self, user_id: str, public_id: str | None = None) -> list[str]:
        """Remove one identity of the user (or all of them with no `public_id`): that WeChat
        user is a stranger again, and its next login makes a new account. The public ids
        removed (none if `public_id` is not one of this user's)."""
        params: tuple[str, ...] = (user_id,) if public_id is None else (user_id, public_id)
        sql = "WHERE user_id = ?" if public_id is None else "WHERE user_id = ? AND public_id = ?"
        rows = self.db.execute(f"DELETE FROM huihua_wechat_identity {sql} RETURNING public_id", params)
        return [str(r[0]) for r in rows]

    def set_profile(self, appid: str, openid: str, profile_json: str, now: float) -> None:
        self.db.execute(
            "UPDATE huihua_wechat_identity SET profile = ?, updated_at = ? WHERE appid = ? AND openid = ?",
            (profile_json, now, appid, openid),
        )

    def move(self, appid: str, openid: str, user_id: str, now: float) -> None:
        """Bind the identity to another user (a new binding: `bound_at` starts again)."""
        self.db.execute(
            "UPDATE huihua_wechat_identity SET user_id = ?, updated_at = ?, bound_at = ?"
            " WHERE appid = ? AND openid = ?",
            (user_id, now, now, appid, openid),
        )
