"""`huihua serve` and `huihua emulator`: checks before the banner, workers, metrics, and the
emulator beside the service."""

from __future__ import annotations

import atexit
import logging
import logging.config
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, cast

import click
from rich.markup import escape

from ..config import SETTINGS, ConfigError, Settings, masked_url
from ..logs import log_config
from ..preflight import check_database, check_port, check_store, local_accounts_warning
from .base import console, fail, is_redis, load_settings, main


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
        from ..wechat.emulator.state import DEFAULT_APPID, DEFAULT_SECRET

        os.environ.setdefault("HUIHUA_WECHAT_APPID", DEFAULT_APPID)
        os.environ.setdefault("HUIHUA_WECHAT_SECRET", DEFAULT_SECRET)
        os.environ["HUIHUA_WECHAT_API_BASE"] = f"http://127.0.0.1:{emulator_port}"
    loaded = load_settings(prefix="cannot start: ")
    _preflight(loaded.settings, host, port, emulator_port if with_emulator else None)
    try:
        settings = loaded.settings.with_secret_key()  # generate the key once, before workers race for it
    except ConfigError as exc:
        fail(str(exc))
    # for the lines before uvicorn starts; uvicorn applies it again (dictConfig consumes its dict)
    logging.config.dictConfig(log_config(log_level, settings.log_format))
    if with_emulator:
        # loopback only, whatever --host is: its control API mints login codes for any openid
        _start_emulator_thread(settings, "127.0.0.1", emulator_port, log_level)
    if workers > 1:
        _metrics_dir()
    try:
        from ..http.app import create_app

        if workers == 1:
            app: Any = create_app(settings)
        else:
            app = "huihua.http.app:app_from_env"
    except Exception as exc:  # a store URL that cannot work: say so before listening
        fail(f"cannot start: {exc}", "check HUIHUA_STORE / --store and HUIHUA_DATABASE")
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
            fail(f"cannot start: {problem}")
    if problem := check_store(settings.store):
        fail(f"cannot start: session store {masked_url(settings.store)}: {problem}")
    if problem := check_database(settings.database_url):
        fail(f"cannot start: accounts database {masked_url(settings.database_url)}: {problem}")


def _announce(settings: Settings, text: str, message: str, **fields: Any) -> None:
    """A start-up notice: rich text, or with HUIHUA_LOG_FORMAT=json one JSON line with fields."""
    if settings.log_format == "json":
        logging.getLogger("huihua.serve").info(message, extra=fields)
    else:
        console.print(text)


def _warn_if_evicting(settings: Settings) -> None:
    """An evicting Redis can lose what revocation relies on: say so at start (not fatal)."""
    url = settings.store
    if not is_redis(url):
        return
    from ..core.errors import HuihuaError
    from ..stores import store_from_url
    from ..stores.redis import RedisStore, check_eviction, driver_errors

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

    from ..wechat.emulator import create_app as create_emulator
    from ..wechat.emulator.state import DEFAULT_APPID

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
        fail(f"cannot start: the WeChat emulator did not start on {url}: choose another --emulator-port")
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
    from ..wechat.emulator import run
    from ..wechat.emulator.state import DEFAULT_APPID, DEFAULT_SECRET

    if problem := check_port(host, port):
        fail(f"cannot start the emulator: {problem}")
    registered = {DEFAULT_APPID: DEFAULT_SECRET}
    for item in apps:
        appid, sep, secret = item.partition(":")
        if not sep or not appid or not secret:
            fail(f"--app {item!r} is not APPID:SECRET")
        registered[appid] = secret
    run(host=host, port=port, apps=registered)
