"""`huihua user …` and `huihua sessions …`: accounts and their sessions, by name or id."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ..config import Settings

if TYPE_CHECKING:
    from ..accounts.users import User, UserRepository

from .base import console, fail, main, print_json, print_rows, say, session_manager, settings_or_exit


@main.group()
def user() -> None:
    """Manage accounts."""


def _users(settings: Settings | None = None) -> UserRepository:
    from ..accounts.database import database_from_url
    from ..accounts.users import UserRepository

    return UserRepository(database_from_url((settings or settings_or_exit()).database_url))


def _find_user(users: UserRepository, name_or_id: str) -> User | None:
    """The account named `name_or_id` or with that id, or None."""
    from ..accounts.users import normalize_username
    from ..core.errors import InvalidUsername

    if found := users.by_id(name_or_id):
        return found
    try:
        return users.by_username(normalize_username(name_or_id))
    except InvalidUsername:
        return None


def _no_user(name_or_id: str) -> NoReturn:
    say(f"no user {name_or_id!r} (by name or id): see huihua user list")
    sys.exit(1)


def _user_fields(found: User) -> dict[str, Any]:
    """What the CLI shows of an account: never the password hash."""
    return found.public() | {"disabled": found.disabled, "has_password": found.password_hash is not None}


@user.command("create")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--email")
def user_create(username: str, password: str, email: str | None) -> None:
    """Create an account."""
    from ..accounts.database import database_from_url
    from ..accounts.passwords import PasswordRejected
    from ..accounts.service import Accounts, InvalidUsername, UsernameTaken

    accounts = Accounts(database_from_url(settings_or_exit().database_url))
    try:
        created = asyncio.run(accounts.register(username, password, email=email))
    except (UsernameTaken, InvalidUsername, PasswordRejected) as exc:
        fail(str(exc))
    console.print(f"created user [bold]{created.username}[/] ({created.id})")


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array on stdout.")
def user_list(as_json: bool) -> None:
    """List accounts, oldest first."""
    found = _users().all()
    if as_json:
        print_json([_user_fields(u) for u in found])
        return
    rows = [
        (
            u.id,
            u.username or "-",
            u.email or "",
            u.phone or "",
            "yes" if u.disabled else "",
            u.public()["created_at"],
        )
        for u in found
    ]
    print_rows(("id", "username", "email", "phone", "disabled", "created"), rows)
    console.print(f"{len(found)} user(s)")


@user.command("show")
@click.argument("name_or_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def user_show(name_or_id: str, as_json: bool) -> None:
    """Show one account, by username or id."""
    found = _find_user(_users(), name_or_id)
    if found is None:
        _no_user(name_or_id)
    fields = _user_fields(found)
    if as_json:
        print_json(fields)
        return
    for key, value in fields.items():
        click.echo(f"{key + ':':<14}{'' if value is None else value}")


@main.group()
def sessions() -> None:
    """List or revoke sessions."""


def _session_owner(settings: Settings, manager: Any, name_or_id: str) -> tuple[str, str]:
    """(user id, how to name them) for --user: an account by name or id, or an id the accounts
    database does not know but the store has sessions for (an app's own user ids)."""
    found = _find_user(_users(settings), name_or_id)
    if found is not None:
        return found.id, f"{found.username} ({found.id})" if found.username else found.id
    if manager.list_user(name_or_id):
        return name_or_id, name_or_id
    _no_user(name_or_id)


def _session_fields(s: Any) -> dict[str, Any]:
    """What the CLI shows of a session: never the token, its hash (the store key) or the data."""

    def at(value: Any) -> str | None:
        return None if value is None else value.isoformat(timespec="seconds")

    return {
        "id": s.id,
        "user_id": s.user_id,
        "client": s.client,
        "ip": s.record.ip,
        "user_agent": s.record.user_agent,
        "created_at": at(s.created_at),
        "last_seen_at": at(s.last_seen_at),
        "expires_at": at(s.expires_at),
        "idle_expires_at": at(s.idle_expires_at),
        "absolute_expires_at": at(s.absolute_expires_at),
        "persistent": s.persistent,
    }


@sessions.command("list")
@click.option("--user", "name_or_id", required=True, help="Username or user id (u_...).")
@click.option("--json", "as_json", is_flag=True, help="One JSON array on stdout.")
def sessions_list(name_or_id: str, as_json: bool) -> None:
    """List a user's live sessions, with their full ids."""
    settings = settings_or_exit()
    manager = session_manager(settings)
    user_id, _ = _session_owner(settings, manager, name_or_id)
    found = manager.list_user(user_id)
    if as_json:
        print_json([_session_fields(s) for s in found])
        return
    rows = [
        (f["id"], f["client"], f["ip"] or "", f["created_at"], f["last_seen_at"], f["expires_at"])
        for f in map(_session_fields, found)
    ]
    print_rows(("id", "client", "ip", "created", "last seen", "expires"), rows)
    console.print(f"{len(found)} live session(s)")


@sessions.command("revoke")
@click.option("--user", "name_or_id", required=True, help="Username or user id (u_...).")
@click.option("--id", "session_id", help="Only this session (its id or an unambiguous prefix); default: all.")
def sessions_revoke(name_or_id: str, session_id: str | None) -> None:
    """Revoke one of a user's sessions, or all of them; exit 1 when none matched."""
    settings = settings_or_exit()
    manager = session_manager(settings)
    user_id, who = _session_owner(settings, manager, name_or_id)
    if session_id is None:
        count = manager.revoke_user(user_id, reason="cli")
        say(f"revoked {count} session(s)" if count else f"no live session for {who}")
        sys.exit(0 if count else 1)
    if not session_id.strip():
        fail("--id is empty: give a session id or the start of one (see huihua sessions list)")
    live = [s.id for s in manager.list_user(user_id)]
    matches = [session_id] if session_id in live else [i for i in live if i.startswith(session_id)]
    if len(matches) > 1:
        listed = ", ".join(sorted(matches))
        say(f"session id {session_id!r} is ambiguous: {listed}; give more characters")
        sys.exit(1)
    done = bool(matches) and manager.revoke_id(user_id, matches[0])
    say(f"revoked 1 session ({matches[0]})" if done else f"no live session {session_id} for {who}")
    sys.exit(0 if done else 1)
