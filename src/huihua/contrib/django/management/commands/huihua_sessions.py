"""`manage.py huihua_sessions list|revoke <user>`: a user's sessions, by username or pk."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...conf import manager


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


class Command(BaseCommand):
    help = "List a user's live sessions, or revoke one (--id) or all of them (--all)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["list", "revoke"])
        parser.add_argument("user", help="username or primary key")
        parser.add_argument("--id", dest="session_id", help="the public session id to revoke")
        parser.add_argument("--all", action="store_true", help="revoke every session of the user")

    def _user_id(self, value: str) -> str:
        model: Any = get_user_model()
        user = model.objects.filter(**{model.USERNAME_FIELD: value}).first()
        if user is None and value.isdigit():
            user = model.objects.filter(pk=value).first()
        if user is None:
            raise CommandError(f"no user {value!r}")
        return str(user.pk)

    def handle(self, *args: Any, **options: Any) -> None:
        user_id = self._user_id(options["user"])
        sessions = manager()
        if options["action"] == "list":
            live = sessions.list_user(user_id)
            self.stdout.write(f"{len(live)} live session(s)")
            for s in live:
                r = s.record
                self.stdout.write(
                    f"{r.id}  {r.client:<11}  created {_when(r.created_at)}  "
                    f"seen {_when(r.last_seen_at)}  expires {_when(r.expires_at)}  "
                    f"{r.ip or '-'}  {r.user_agent or '-'}"
                )
            return
        if options["session_id"]:
            if not sessions.revoke_id(user_id, options["session_id"]):
                raise CommandError("no such live session for this user")
            self.stdout.write("revoked 1 session")
        elif options["all"]:
            count = sessions.revoke_user(user_id, reason="admin")
            self.stdout.write(f"revoked {count} session(s)")
        else:
            raise CommandError("say which: --id <session id> or --all")
