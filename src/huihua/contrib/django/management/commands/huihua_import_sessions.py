"""`manage.py huihua_import_sessions`: copy live sessions from `django_session` into huihua.

Run it once when switching SESSION_ENGINE (with django.contrib.sessions still installed), so
nobody is logged out. Each imported session keeps its data and Django's expire_date as its
absolute deadline; its idle timeout starts at the import. The store never sees the old key: the
session is filed under a hash of it (see legacy.py), and the first request that presents the old
cookie gets the session rotated into a huihua token, after which the old key is dead. Running the
command again skips what was imported already.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from huihua.core.data import DataChanges, apply_changes
from huihua.core.errors import SessionDataError
from huihua.core.record import SessionRecord, Timing
from huihua.core.tokens import new_session_id

from ... import legacy
from ...conf import manager
from ...session import AUTH_USER_KEY, EXPIRY_KEY, SessionStore


class Command(BaseCommand):
    help = "Copy live sessions from Django's django_session table into the huihua store."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default="default", help="where django_session lives")
        parser.add_argument("--dry-run", action="store_true", help="count, write nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            from django.contrib.sessions.models import Session as DjangoSession
        except RuntimeError as exc:
            raise CommandError(
                "keep 'django.contrib.sessions' in INSTALLED_APPS until the import is done"
            ) from exc
        sessions = manager()
        codec = SessionStore()  # same signing salt as Django's db and cached_db backends
        now = sessions.clock.now()
        life = sessions.policy.lifetime("browser")
        imported = skipped = failed = 0
        rows = DjangoSession.objects.using(options["database"]).filter(expire_date__gt=timezone.now())
        for row in rows.iterator():
            old_key = row.session_key
            if not legacy.is_legacy_key(old_key):
                failed += 1
                continue
            if sessions.store.kv_get(legacy.pointer(old_key), now=now) is not None:
                skipped += 1
                continue
            data = codec.decode(row.session_data)
            expires_at = row.expire_date.timestamp()
            custom = data.get(EXPIRY_KEY)
            idle = float(custom) if isinstance(custom, int) and custom > 0 else life.idle
            user = data.get(AUTH_USER_KEY)
            user_id = None if user is None else str(user)
            try:
                data = apply_changes({}, DataChanges(set=data).validate(), max_bytes=sessions.max_data_bytes)
            except SessionDataError as exc:
                self.stderr.write(f"skipped a session that huihua cannot hold: {exc}")
                failed += 1
                continue
            record = SessionRecord(
                key=legacy.store_key(old_key, user_id),
                id=new_session_id(),
                user_id=user_id,
                client="browser",
                created_at=now,
                timing=Timing(now, idle, expires_at, persistent=custom != 0),
                data=data,
            )
            if not options["dry_run"]:
                sessions.store.create(record)
                sessions.store.kv_set(legacy.pointer(old_key), record.key, now=now, ttl=expires_at - now)
            imported += 1
        verb = "would import" if options["dry_run"] else "imported"
        self.stdout.write(f"{verb} {imported} session(s); {skipped} imported before; {failed} not importable")
