"""The `huihua` command: serve, emulator, user, sessions, purge, doctor."""

from __future__ import annotations

import asyncio
import atexit
import logging
import logging.config
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

import click
from rich.console import Console
from rich.markup import escape

from .config import SETTINGS, ConfigError, Loaded, Settings, load, masked_url
from .logs import log_config
from .preflight import check_database, check_port, check_store, local_accounts_warning

if TYPE_CHECKING:
    from .accounts.users import User, UserRepository

console = Console(stderr=True, highlight=False, soft_wrap=True)  # no wrapping in logs


def _load(prefix: str = "") -> Loaded:
    """The settings, checked: a value that does not fit ends the command with one line each."""
    try:
        return load()
    except ConfigError as exc:
        _fail("\n".join(prefix + line for line in str(exc).splitlines()))


def _settings() -> Settings:
    loaded = _load()
    for line in loaded.unknown:
        console.print(f"[bold yellow]warning:[/] {escape(line)}")
    return loaded.settings


def _fail(message: str, hint: str | None = None) -> NoReturn:
    for line in message.splitlines():
        console.print(f"[bold red]error:[/] {escape(line)}")
    if hint:
        console.print(f"  [dim]{escape(hint)}[/]")
    sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="huihua")
def main() -> None:
    """huihua (会话): sessions for WeChat Mini Programs and the web."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8600, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="Worker processes.")
@click.option(
    "--store", envvar="HUIHUA_STORE", help=f"Session store URL [default: {SETTINGS['store'].default}]."
)
@click.option(
    "--database", envvar="HUIHUA_DATABASE", help="Accounts database URL [default: the store's SQLite file]."
)
@click.option(
    "--emulator", "with_emulator", is_flag=True, help="Run the WeChat emulator beside the service and use it."
)
@click.option("--emulator-port", default=8601, show_default=True, type=int)
@click.option("--log-level", default="info", show_default=True)
def serve(
    host: str,
    port: int,
    workers: int,
    store: str | None,
    database: str | None,
    with_emulator: bool,
    emulator_port: int,
    log_level: str,
) -> None:
    """Serve the HTTP API, the docs and the account pages."""
    import uvicorn

    if store:
        os.environ["HUIHUA_STORE"] = store
    if database:
        os.environ["HUIHUA_DATABASE"] = database
    if with_emulator:
        from .wechat.emulator.state import DEFAULT_APPID, DEFAULT_SECRET

        os.environ.setdefault("HUIHUA_WECHAT_APPID", DEFAULT_APPID)
        os.environ.setdefault("HUIHUA_WECHAT_SECRET", DEFAULT_SECRET)
        os.environ["HUIHUA_WECHAT_API_BASE"] = f"http://127.0.0.1:{emulator_port}"
    loaded = _load(prefix="cannot start: ")
    _preflight(loaded.settings, host, port, emulator_port if with_emulator else None)
    try:
        settings = loaded.settings.with_secret_key()  # generate the key once, before workers race for it
    except ConfigError as exc:
        _fail(str(exc))
    # for the lines before uvicorn starts; uvicorn applies it again (dictConfig consumes its dict)
    logging.config.dictConfig(log_config(log_level, settings.log_format))
    if with_emulator:
        # loopback only, whatever --host is: its control API mints login codes for any openid
        _start_emulator_thread(settings, "127.0.0.1", emulator_port, log_level)
    if workers > 1:
        _metrics_dir()
    try:
        from .http.app import create_app

        if workers == 1:
            app: Any = create_app(settings)
        else:
            app = "huihua.http.app:app_from_env"
    except Exception as exc:  # a store URL that cannot work: say so before listening
        _fail(f"cannot start: {exc}", "check HUIHUA_STORE / --store and HUIHUA_DATABASE")
    base = f"http://{host}:{port}"
    wechat = (
        f"{settings.wechat_appid} via {settings.wechat_api_base}"
        if settings.wechat_enabled
        else "off (set HUIHUA_WECHAT_APPID and HUIHUA_WECHAT_SECRET, or --emulator)"
    )
    _announce(
        settings,
        f"[bold]huihua[/] listening on [cyan]{base}[/] with {workers} worker(s)\n"
        f"  store     {masked_url(settings.store)}\n"
        f"  accounts  {masked_url(settings.database_url)}\n"
        f"  API docs  {base}/docs    account page  {base}/\n"
        f"  WeChat    {wechat}",
        f"huihua listening on {base}",
        url=base,
        workers=workers,
        store=masked_url(settings.store),
        accounts=masked_url(settings.database_url),
        wechat=wechat,
    )
    for line in loaded.unknown:  # a typo is not fatal to a running service, but it is said
        _announce(settings, f"[bold yellow]warning:[/] {escape(line)}", f"warning: {line}")
    if local := local_accounts_warning(settings):
        _announce(settings, f"[bold yellow]warning:[/] {escape(local)}", f"warning: {local}")
    _warn_if_evicting(settings)
    uvicorn.run(
        app,
        host=host,
        port=port,
        workers=workers,
        factory=isinstance(app, str),
        log_level=log_level,
        log_config=log_config(log_level, settings.log_format),
        access_log=False,
        # forwarded headers are huihua's to judge (HUIHUA_TRUST_PROXY), never uvicorn's
        proxy_headers=False,
        forwarded_allow_ips="",
    )


def _preflight(settings: Settings, host: str, port: int, emulator_port: int | None) -> None:
    """Before anything is announced or bound: the ports are free, the store and the accounts
    database answer. Else one line with the cause and the fix, and exit 2."""
    problems = [check_port(host, port)]
    if emulator_port is not None:
        problems.append(check_port("127.0.0.1", emulator_port, "--emulator-port"))
    for problem in problems:
        if problem:
            _fail(f"cannot start: {problem}")
    if problem := check_store(settings.store):
        _fail(f"cannot start: session store {masked_url(settings.store)}: {problem}")
    if problem := check_database(settings.database_url):
        _fail(f"cannot start: accounts database {masked_url(settings.database_url)}: {problem}")


def _announce(settings: Settings, text: str, message: str, **fields: Any) -> None:
    """A start-up notice: rich text, or with HUIHUA_LOG_FORMAT=json one JSON line with fields."""
    if settings.log_format == "json":
        logging.getLogger("huihua.serve").info(message, extra=fields)
    else:
        console.print(text)


def _is_redis(url: str) -> bool:
    from urllib.parse import urlsplit

    return urlsplit(url).scheme in ("redis", "rediss", "unix", "redis+cluster", "redis+sentinel")


def _warn_if_evicting(settings: Settings) -> None:
    """An evicting Redis can lose what revocation relies on: say so at start (not fatal)."""
    url = settings.store
    if not _is_redis(url):
        return
    from .core.errors import HuihuaError
    from .stores import store_from_url
    from .stores.redis import RedisStore, check_eviction, driver_errors

    try:
        store = cast(RedisStore, store_from_url(url))  # a cluster's client reads its slot map now
    except HuihuaError:
        return  # unreachable: the first request says so with a 503
    try:
        with driver_errors():
            good, message = check_eviction(store)
    except HuihuaError:
        return
    finally:
        store.close()
    if good is not True:
        _announce(settings, f"[bold yellow]warning:[/] {message}", f"warning: {message}")


def _metrics_dir() -> None:
    """Prometheus multiprocess mode for the workers: each writes its values to one folder and
    /metrics adds them up. A PROMETHEUS_MULTIPROC_DIR the user set is used and emptied of old
    values (prometheus-client's rule: clean it at start); else a private folder, removed at exit."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        for old in Path(given).glob("*.db"):
            old.unlink(missing_ok=True)
        return
    folder = tempfile.mkdtemp(prefix="huihua-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder  # before the workers start: they inherit it
    atexit.register(shutil.rmtree, folder, True)


def _start_emulator_thread(settings: Settings, host: str, port: int, log_level: str) -> None:
    import uvicorn

    from .wechat.emulator import create_app as create_emulator
    from .wechat.emulator.state import DEFAULT_APPID

    config = uvicorn.Config(
        create_emulator(),
        host=host,
        port=port,
        log_level="warning",
        log_config=log_config(log_level, settings.log_format),
        access_log=False,
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="huihua-emulator", daemon=True)
    thread.start()
    for _ in range(200):
        if server.started or not thread.is_alive():
            break
        time.sleep(0.05)
    url = f"http://{host}:{port}"
    if not server.started:  # taken meanwhile, or it failed: never talk to whatever holds the port
        _fail(f"cannot start: the WeChat emulator did not start on {url}: choose another --emulator-port")
    _announce(
        settings,
        f"[bold]WeChat emulator[/] on [cyan]{url}[/] (appid {DEFAULT_APPID}; control API under /_emulator/)",
        f"WeChat emulator on {url}",
        url=url,
        appid=DEFAULT_APPID,
    )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8601, show_default=True, type=int)
@click.option("--app", "apps", multiple=True, metavar="APPID:SECRET", help="Register another mini program.")
def emulator(host: str, port: int, apps: tuple[str, ...]) -> None:
    """Run the local WeChat API emulator (offline development and tests)."""
    from .wechat.emulator import run
    from .wechat.emulator.state import DEFAULT_APPID, DEFAULT_SECRET

    if problem := check_port(host, port):
        _fail(f"cannot start the emulator: {problem}")
    registered = {DEFAULT_APPID: DEFAULT_SECRET}
    for item in apps:
        appid, sep, secret = item.partition(":")
        if not sep or not appid or not secret:
            _fail(f"--app {item!r} is not APPID:SECRET")
        registered[appid] = secret
    run(host=host, port=port, apps=registered)


def _manager(settings: Settings | None = None) -> Any:
    from .core.manager import SessionManager
    from .stores import store_from_url

    settings = settings or _settings()
    return SessionManager(
        store_from_url(settings.store),
        events=(),
        max_data_bytes=settings.max_data_bytes,
        clock=settings.clock(),
    )


@main.group()
def user() -> None:
    """Manage accounts."""


def _users(settings: Settings | None = None) -> UserRepository:
    from .accounts.database import database_from_url
    from .accounts.users import UserRepository

    return UserRepository(database_from_url((settings or _settings()).database_url))


def _find_user(users: UserRepository, name_or_id: str) -> User | None:
    """The account named `name_or_id` or with that id, or None."""
    from .accounts.users import InvalidUsername, normalize_username

    if found := users.by_id(name_or_id):
        return found
    try:
        return users.by_username(normalize_username(name_or_id))
    except InvalidUsername:
        return None


def _no_user(name_or_id: str) -> NoReturn:
    _say(f"no user {name_or_id!r} (by name or id): see huihua user list")
    sys.exit(1)


def _user_fields(found: User) -> dict[str, Any]:
    """What the CLI shows of an account: never the password hash."""
    return found.public() | {"disabled": found.disabled, "has_password": found.password_hash is not None}


def _print_json(value: Any) -> None:
    import json

    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


def _say(text: str) -> None:
    """A plain line on stderr (no markup: names and ids are printed as they are)."""
    console.print(text, markup=False)


def _print_rows(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Plain aligned columns on stdout, never cut: ids are copied from here."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@user.command("create")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--email")
def user_create(username: str, password: str, email: str | None) -> None:
    """Create an account."""
    from .accounts.database import database_from_url
    from .accounts.passwords import PasswordRejected
    from .accounts.service import Accounts, InvalidUsername, UsernameTaken

    accounts = Accounts(database_from_url(_settings().database_url))
    try:
        created = asyncio.run(accounts.register(username, password, email=email))
    except (UsernameTaken, InvalidUsername, PasswordRejected) as exc:
        _fail(str(exc))
    console.print(f"created user [bold]{created.username}[/] ({created.id})")


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array on stdout.")
def user_list(as_json: bool) -> None:
    """List accounts, oldest first."""
    found = _users().all()
    if as_json:
        _print_json([_user_fields(u) for u in found])
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
    _print_rows(("id", "username", "email", "phone", "disabled", "created"), rows)
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
        _print_json(fields)
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
    settings = _settings()
    manager = _manager(settings)
    user_id, _ = _session_owner(settings, manager, name_or_id)
    found = manager.list_user(user_id)
    if as_json:
        _print_json([_session_fields(s) for s in found])
        return
    rows = [
        (f["id"], f["client"], f["ip"] or "", f["created_at"], f["last_seen_at"], f["expires_at"])
        for f in map(_session_fields, found)
    ]
    _print_rows(("id", "client", "ip", "created", "last seen", "expires"), rows)
    console.print(f"{len(found)} live session(s)")


@sessions.command("revoke")
@click.option("--user", "name_or_id", required=True, help="Username or user id (u_...).")
@click.option("--id", "session_id", help="Only this session (its id or an unambiguous prefix); default: all.")
def sessions_revoke(name_or_id: str, session_id: str | None) -> None:
    """Revoke one of a user's sessions, or all of them; exit 1 when none matched."""
    settings = _settings()
    manager = _manager(settings)
    user_id, who = _session_owner(settings, manager, name_or_id)
    if session_id is None:
        count = manager.revoke_user(user_id, reason="cli")
        _say(f"revoked {count} session(s)" if count else f"no live session for {who}")
        sys.exit(0 if count else 1)
    if not session_id.strip():
        _fail("--id is empty: give a session id or the start of one (see huihua sessions list)")
    live = [s.id for s in manager.list_user(user_id)]
    matches = [session_id] if session_id in live else [i for i in live if i.startswith(session_id)]
    if len(matches) > 1:
        listed = ", ".join(sorted(matches))
        _say(f"session id {session_id!r} is ambiguous: {listed}; give more characters")
        sys.exit(1)
    done = bool(matches) and manager.revoke_id(user_id, matches[0])
    _say(f"revoked 1 session ({matches[0]})" if done else f"no live session {session_id} for {who}")
    sys.exit(0 if done else 1)


@main.command()
@click.option("--batch-size", default=1000, show_default=True)
def purge(batch_size: int) -> None:
    """Delete expired sessions now (the service also does it by itself)."""
    from rich.progress import Progress

    manager = _manager()
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
        if _is_redis(settings.store):
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
    from .core.errors import HuihuaError
    from .stores.redis import check_eviction, driver_errors

    try:
        store = _manager(settings).store
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
        from .wechat import WeChatClient

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
