"""WeChat identities: one row per (appid, openid), tied to a user; the session_key sealed.

Users are keyed by (appid, openid), never a bare openid, so one WeChat user in two mini
programs can never be mistaken for the other (ASVS 6.8.1); the unionid is kept for linking.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    PRIMARY KEY (appid, openid)
)"""
INDEX = "CREATE INDEX IF NOT EXISTS huihua_wechat_identity_user ON huihua_wechat_identity (user_id)"


@dataclass(frozen=True, slots=True)
class WeChatIdentity:
    appid: str
    openid: str
    unionid: str | None
    user_id: str
    session_key_sealed: str | None  # never leaves the server; unsealed only to decrypt or sign


def _identity(row: tuple[Any, ...]) -> WeChatIdentity:
    return WeChatIdentity(*row)


_COLUMNS = "appid, openid, unionid, user_id, session_key_sealed"


class WeChatIdentities:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.execute(SCHEMA)
        db.execute(INDEX)

    def find(self, appid: str, openid: str) -> WeChatIdentity | None:
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM huihua_wechat_identity WHERE appid = ? AND openid = ?", (appid, openid)
        )
        return _identity(rows[0]) if rows else None

    def of_user(self, appid: str, user_id: str) -> WeChatIdentity | None:
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM huihua_wechat_identity WHERE appid = ? AND user_id = ?", (appid, user_id)
        )
        return _identity(rows[0]) if rows else None

    def upsert(self, identity: WeChatIdentity, now: float) -> None:
        self.db.execute(
            f"INSERT INTO huihua_wechat_identity ({_COLUMNS}, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (appid, openid) DO UPDATE SET"
            " unionid = COALESCE(excluded.unionid, huihua_wechat_identity.unionid),"
            " session_key_sealed = excluded.session_key_sealed, updated_at = excluded.updated_at",
            (
                identity.appid,
                identity.openid,
                identity.unionid,
                identity.user_id,
                identity.session_key_sealed,
                now,
                now,
            ),
        )

    def set_profile(self, appid: str, openid: str, profile_json: str, now: float) -> None:
        self.db.execute(
            "UPDATE huihua_wechat_identity SET profile = ?, updated_at = ? WHERE appid = ? AND openid = ?",
            (profile_json, now, appid, openid),
        )

    def move(self, appid: str, openid: str, user_id: str, now: float) -> None:
        self.db.execute(
            "UPDATE huihua_wechat_identity SET user_id = ?, updated_at = ? WHERE appid = ? AND openid = ?",
            (user_id, now, appid, openid),
        )
