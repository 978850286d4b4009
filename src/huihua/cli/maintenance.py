"""`huihua purge` and `huihua doctor`: cleanup now, and every check of a deployment with its fix."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.markup import escape

from ..config import SETTINGS, ConfigError, Loaded, Settings, load, masked_url
from ..preflight import check_database, check_store, local_accounts_warning
from .base import console, is_redis, main, session_manager


@main.command()
@click.option("--batch-size", default=1000, show_default=True)
def purge(batch_size: int) -> None:
    """Delete expired sessions now (the service also does it by itself)."""
    from rich.progress import Progress

    manager = session_manager()
    total = 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("purging expired sessions", total=None)
        while True:
            removed = manager.purge(batch_size=batch_size, max_batches=1)
            total += removed
            progress.update(task, advance=removed)
            if removed < batch_size:
                break
    console.print(f"purged {total} expired session(s)")


@main.command()
def doctor() -> None:
    """Check configuration, the store, the accounts database and WeChat credentials."""
    ok = True

    def report(good: bool, what: str, advice: str = "", *, optional: bool = False) -> None:
        """A failed check fails the command (exit 1); a missing optional feature only advises."""
        nonlocal ok
        ok = ok and (good or optional)
        mark = "[green]✓[/]" if good else "[yellow]![/]" if optional else "[red]✗[/]"
        console.print(
            f"{mark} {escape(what)}" + (f"\n    [dim]{escape(advice)}[/]" if advice and not good else "")
        )

    try:
        loaded = load()
    except ConfigError as exc:
        for line in str(exc).splitlines():
            report(False, line)
        sys.exit(1)
    settings = loaded.settings
    _show_settings(loaded)
    for line in loaded.unknown:
        report(False, line, "remove it or correct the name")
    if problem := check_store(settings.store):
        report(False, f"session store {masked_url(settings.store)}: {problem}")
    else:
        report(True, f"session store reachable: {masked_url(settings.store)}")
        if is_redis(settings.store):
            _check_eviction(settings, report)
    if problem := check_database(settings.database_url):
        report(False, f"accounts database {masked_url(settings.database_url)}: {problem}")
    else:
        report(True, f"accounts database reachable: {masked_url(settings.database_url)}")
    if local := local_accounts_warning(settings):
        report(False, local, optional=True)
    _check_secret_key(settings, report)
    report(
        settings.service_key is not None,
        "service key "
        + ("set" if settings.service_key is not None else "not set")
        + " (introspection and admin routes)",
        "set HUIHUA_SERVICE_KEY to enable /v1/introspect and /v1/admin",
        optional=True,
    )
    if settings.wechat_enabled:
        report(
            _check_wechat(settings),
            f"WeChat credentials accepted by {settings.wechat_api_base}",
            "check HUIHUA_WECHAT_APPID / HUIHUA_WECHAT_SECRET, and the server's IP whitelist",
        )
    else:
        report(
            False,
            "WeChat login not configured",
            "set HUIHUA_WECHAT_APPID and HUIHUA_WECHAT_SECRET (or run `huihua serve --emulator`)",
            optional=True,
        )
    sys.exit(0 if ok else 1)


def _show_settings(loaded: Loaded) -> None:
    """Every setting, its value fit to print and where it came from (env, file, default)."""
    width = max(len(d.env) for d in SETTINGS.values())
    console.print("settings:")
    for name, declared in SETTINGS.items():
        value = declared.show(getattr(loaded.settings, name))
        console.print(f"  {declared.env:<{width}}  {escape(value)}  [dim]({escape(loaded.sources[name])})[/]")


def _check_eviction(settings: Settings, report: Any) -> None:
    from ..core.errors import HuihuaError
    from ..stores.redis import check_eviction, driver_errors

    try:
        store = session_manager(settings).store
        try:
            with driver_errors():
                good, message = check_eviction(store)
        finally:
            store.close()
    except HuihuaError as exc:
        report(
            False, f"Redis maxmemory-policy could not be read: {exc}", "start the store or fix HUIHUA_STORE"
        )
        return
    report(good is True, message, "set maxmemory-policy noeviction", optional=good is None)


def _check_secret_key(settings: Settings, report: Any) -> None:
    path = settings.secret_file()
    if not settings.secret_key and not path.exists():
        report(True, f"secret key: will be generated into {path} on first start")  # nothing to fix
        return
    try:
        settings.with_secret_key()  # reads the file; generates nothing, as the file exists
    except ConfigError as exc:
        report(False, f"secret key: {exc}")
        return
    report(True, "secret key: " + ("set" if settings.secret_key else f"read from {path}"))


def _check_wechat(settings: Settings) -> bool:
    try:
        from ..wechat import WeChatClient

        assert settings.wechat_appid
        assert settings.wechat_secret
        client = WeChatClient(
            settings.wechat_appid, settings.wechat_secret.reveal(), api_base=settings.wechat_api_base
        )
        client.get_stable_access_token()
        return True
    except Exception:
        return False


if __name__ == "__main__":
    main()
