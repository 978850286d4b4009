"""`manage.py huihua_purge`: delete expired sessions now (the store also does it by itself)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ...conf import manager


class Command(BaseCommand):
    help = "Delete expired and revoked sessions whose deadline has passed, in short batches."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=1000)

    def handle(self, *args: Any, **options: Any) -> None:
        removed = manager().purge(batch_size=options["batch_size"])
        self.stdout.write(f"purged {removed} expired session(s)")
