"""What every `huihua` command shares: the group, settings checked at start, plain output."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape

from ..config import ConfigError, Loaded, Settings, load

console = Console(stderr=True, highlight=False, soft_wrap=True)  # no wrapping in logs


def load_settings(prefix: str = "") -> Loaded:
    """The settings, checked: a value that does not fit ends the command with one line each."""
    try:
        return load()
    except ConfigError as exc:
        fail("\n".join(prefix + line for line in str(exc).splitlines()))


def settings_or_exit() -> Settings:
    loaded = load_settings()
    for line in loaded.unknown:
        console.print(f"[bold yellow]warning:[/] {escape(line)}")
    return loaded.settings


def fail(message: str, hint: str | None = None) -> NoReturn:
    for line in message.splitlines():
        console.print(f"[bold red]error:[/] {escape(line)}")
    if hint:
        console.print(f"  [dim]{escape(hint)}[/]")
    sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="huihua")
def main() -> None:
    """huihua (会话): sessions for WeChat Mini Programs and the web."""


def session_manager(settings: Settings | None = None) -> Any:
    from ..core.manager import SessionManager
    from ..stores import store_from_url

    settings = settings or settings_or_exit()
    return SessionManager(
        store_from_url(settings.store),
        events=(),
        max_data_bytes=settings.max_data_bytes,
        clock=settings.clock(),
    )


def print_json(value: Any) -> None:
    import json

    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


def say(text: str) -> None:
    """A plain line on stderr (no markup: names and ids are printed as they are)."""
    console.print(text, markup=False)


def print_rows(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Plain aligned columns on stdout, never cut: ids are copied from here."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def is_redis(url: str) -> bool:
    from urllib.parse import urlsplit

    return urlsplit(url).scheme in ("redis", "rediss", "unix", "redis+cluster", "redis+sentinel")
