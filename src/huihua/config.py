"""Settings: one declaration each (name, type, default, meaning), read from HUIHUA_* environment
variables, a TOML file named by HUIHUA_CONFIG (the same names in lower case, without the prefix)
or Django's settings (huihua.contrib.django.conf), and checked at start.

Each field of `Settings` below is the whole of a setting: its annotation and kind (how a value is
read and what is expected, config_kinds), its default and its meaning. Parsing, the README's
configuration table (`markdown_table`, written by scripts/settings-table and compared by
tests/test_settings_table.py) and what `huihua doctor` lists are derived from them.
"""

from __future__ import annotations

import difflib
import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import config_kinds as kinds
from .config_kinds import ConfigError, Declared, Secret, masked_url, setting
from .core.addresses import Network
from .core.clock import Clock, OffsetClock
from .core.files import write_private_once
from .core.manager import DEFAULT_MAX_DATA_BYTES

__all__ = ["SETTINGS", "ConfigError", "Declared", "Loaded", "Secret", "Settings", "load", "masked_url"]

DEFAULT_STORE = "sqlite:///./huihua.db"
DEFAULT_WECHAT_API_BASE = "https://api.weixin.qq.com"
MIN_SECRET_CHARS = 32  # token_urlsafe(32) gives 43; anything shorter was typed by hand
GENERATE_SECRET = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'  # noqa: S105 - advice
SECRET_FILE = "huihua.secret"  # noqa: S105 - a file name


@dataclass(frozen=True)
class Settings:
    """Built from code, plain values are read as from the environment: Settings(service_key="k")
    holds a Secret, Settings(trust_proxy="10.0.0.0/8") networks; a bad one is a ConfigError."""

    store: str = setting(
        DEFAULT_STORE, kinds.STORE_URL, "session store URL (see [Stores](#stores): `sqlite://`, `redis://`, "
        "`redis+cluster://`, `redis+sentinel://`, `postgresql://`, `memory://`)", option="--store",
    )  # fmt: skip
    database: str | None = setting(
        None, kinds.DATABASE_URL, "accounts database URL (SQLite or PostgreSQL; on PostgreSQL a statement "
        "waits at most 5 s, then 503, unless the database, role or URL `options` set `statement_timeout`)",
        shown="the store's SQLite file", option="--database",
    )  # fmt: skip
    secret_key: tuple[Secret, ...] = setting(
        (), kinds.SECRETS, "encrypts `session_key` at rest; comma-separated list: the first seals, all open "
        f"(rotation). Each key at least {MIN_SECRET_CHARS} characters (`{GENERATE_SECRET}`); a shorter one, "
        f"or an empty or short `{SECRET_FILE}`, is refused at start",
        shown=f"generated once into `{SECRET_FILE}` (mode 0600) beside the database",
    )  # fmt: skip
    service_key: Secret | None = setting(
        None, kinds.SECRET, "the `X-Service-Key` for introspection and admin calls",
        shown="none: those routes are off",
    )  # fmt: skip
    wechat_appid: str | None = setting(None, kinds.TEXT, "the mini program's AppID", shown="unset")
    wechat_secret: Secret | None = setting(None, kinds.SECRET, "the mini program's AppSecret", shown="unset")
    wechat_api_base: str = setting(
        DEFAULT_WECHAT_API_BASE, kinds.TEXT, "where WeChat is (`huihua serve --emulator` sets the emulator)"
    )
    allowed_origins: tuple[str, ...] = setting(
        (),
        kinds.ORIGINS,
        "more origins allowed for cookie-authenticated writes",
        shown="the service's own origin",
    )
    cors_origins: tuple[str, ...] = setting(
        (), kinds.CORS_ORIGINS, "origins whose scripts may call the API (CORS), comma-separated, exact "
        "(`https://app.example.com`, no `*`): preflights answered and cached 10 minutes, `X-Session-Token` "
        "readable, credentials allowed to cookie clients. They are trusted for cookie writes too (as if in "
        "`HUIHUA_ALLOWED_ORIGINS`); see [CORS](docs/http-api.md#cors)",
        shown="none: no CORS headers",
    )  # fmt: skip
    max_data_bytes: int = setting(
        DEFAULT_MAX_DATA_BYTES, kinds.COUNT, "session data cap (413 `session_data_too_large` beyond)"
    )
    max_body_bytes: int = setting(
        256 * 1024, kinds.COUNT,
        "request body cap (413 `payload_too_large` beyond); keep a proxy's own limit above it",
    )  # fmt: skip
    sweep_interval: float = setting(
        60.0, kinds.SECONDS, "seconds between sweeps of expired sessions (one process at a time sweeps)"
    )
    # per client IP; generous because mobile carriers put many phones behind one address (CGNAT)
    wechat_logins_per_ip_minute: int = setting(
        600, kinds.COUNT, "WeChat login attempts per client IP a minute (mobile carriers share IPs)"
    )
    anonymous_sessions_per_ip_minute: int = setting(  # S10: a visitor flood cannot fill the store
        600, kinds.COUNT, "visitor sessions one client IP may create a minute"
    )
    trust_proxy: tuple[Network, ...] = setting(
        (), kinds.NETWORKS, "your reverse proxies' addresses or networks, comma-separated "
        "(`127.0.0.1,10.0.0.0/8`, IPv6 too). Only from those peers are `X-Forwarded-For` (the client is the "
        "rightmost hop that is not one of them; a hop that is not an IP address stops the walk) and "
        "`X-Forwarded-Proto` believed. The old `1` is refused",
        shown="none: forwarded headers are ignored (uvicorn's own handling is off too)",
    )  # fmt: skip
    cookie_secure: bool | None = setting(
        None, kinds.SWITCH, "`1`: always `__Host-sid` with `Secure` (behind a TLS proxy you do not name); "
        "`0`: never", shown="`Secure` when the request is HTTPS",
    )  # fmt: skip
    log_format: str = setting(
        "text", kinds.LOG_FORMAT, "`huihua serve`'s log lines: `text`, or `json` (one object a line, with "
        "`event`, `session_id`, `user_id`, `client`, `reason` on security events). Every session event "
        "(login, logout, login_failed, revoked, expired, invalid_token, ...) is logged at `info`, the "
        "default `--log-level`; never a token",
    )  # fmt: skip
    max_sessions_per_user: int = setting(
        50, kinds.COUNT, "live sessions per user; a new one ends the least recently used (event `revoked`, "
        "reason `session_limit:<id>`); 0 = no cap",
        note="every device a person has; bounds storage per account, ASVS 7.1.2",
    )  # fmt: skip
    anonymous_idle_timeout: float = setting(
        30 * 60.0, kinds.SECONDS, "visitor (anonymous) session idle timeout in seconds, never longer than "
        "the client kind's; a login gives the user's",
    )  # fmt: skip
    anonymous_absolute_timeout: float = setting(
        86400.0, kinds.SECONDS, "visitor (anonymous) session absolute lifetime in seconds, never longer "
        "than the client kind's",
    )  # fmt: skip
    anonymous_max_data_bytes: int = setting(
        8 * 1024, kinds.COUNT, "visitor session data cap (413 `session_data_too_large` beyond)"
    )
    registrations_per_ip_minute: int = setting(
        20, kinds.COUNT, "accounts one client IP may register a minute (each costs an argon2 hash); "
        "429 with `Retry-After` beyond",
    )  # fmt: skip
    clock_offset: float = setting(
        0.0, kinds.SECONDS, "**testing only**: this process's clock runs this many seconds ahead "
        "(clock-skew tests); never set in production",
    )  # fmt: skip
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, declared in SETTINGS.items():
            object.__setattr__(self, name, declared.parse(getattr(self, name)))

    @property
    def write_origins(self) -> tuple[str, ...]:
        """Origins besides the service's own trusted for cookie-authenticated writes: the allowed
        ones and the CORS ones (those get credentials, so their writes must pass the CSRF check)."""
        return tuple(dict.fromkeys((*self.allowed_origins, *self.cors_origins)))

    @property
    def database_url(self) -> str:
        if self.database:
            return self.database
        return self.store if urlsplit(self.store).scheme == "sqlite" else DEFAULT_STORE

    def clock(self) -> Clock | None:
        """The clock to inject: None (the system clock) unless a test skews this process."""
        return OffsetClock(self.clock_offset) if self.clock_offset else None

    @property
    def wechat_enabled(self) -> bool:
        return bool(self.wechat_appid and self.wechat_secret)

    def secret_file(self) -> Path:
        """Where a generated secret key is kept: beside the SQLite database, else here."""
        from .stores import sqlite_path

        db = self.database_url
        folder = Path(sqlite_path(db)[0]).parent if db.startswith("sqlite") else Path(".")
        return folder.resolve() / SECRET_FILE  # resolved: sqlite:////abs gives //abs

    def with_secret_key(self) -> Settings:
        """Fill in the secret key: the configured one, or one generated once and kept in
        `secret_file()` (mode 0600). A key shorter than 32 characters is refused (ConfigError):
        it would be guessable."""
        if self.secret_key:
            if short := [k for k in self.secret_key if len(k.reveal()) < MIN_SECRET_CHARS]:
                raise ConfigError(
                    f"HUIHUA_SECRET_KEY: every key needs at least {MIN_SECRET_CHARS} characters "
                    f"(one has {len(short[0].reveal())}); generate one with: {GENERATE_SECRET}"
                )
            return self
        path = self.secret_file()
        if path.exists():
            text = path.read_text().strip()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            text = write_private_once(path, secrets.token_urlsafe(32)).strip()
        if len(text) < MIN_SECRET_CHARS:
            raise ConfigError(
                f"{path} holds {'no' if not text else 'a short'} secret ({len(text)} characters, at least "
                f"{MIN_SECRET_CHARS}): write a new one with: {GENERATE_SECRET} > {path}"
            )
        return replace(self, secret_key=(Secret(text),))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        return load(env, **overrides).settings


SETTINGS: dict[str, Declared] = {
    f.name: Declared(
        f.name, f.metadata["setting"][0], f.default, f.metadata["setting"][1], **f.metadata["setting"][2]
    )
    for f in fields(Settings)
    if "setting" in f.metadata
}
_ORDER = {name: i for i, name in enumerate(SETTINGS)}  # errors are said in the README's order
NOT_SETTINGS = ("HUIHUA_CONFIG",)
TOOLS = ("HUIHUA_TEST_", "HUIHUA_BENCH_", "HUIHUA_SOAK_", "HUIHUA_FUZZ_")  # the test suite's own


@dataclass(frozen=True)
class Loaded:
    """Settings with where each came from (env, file PATH, argument, default) and a line for
    each name that is not a setting, with the nearest one that is."""

    settings: Settings
    sources: Mapping[str, str]
    unknown: tuple[str, ...]


def _nearest(key: str, prefix: str = "") -> str:
    """`; did you mean NAME?` for the declared name nearest to `key` (lower case, no prefix)."""
    close = difflib.get_close_matches(key, list(SETTINGS), n=1, cutoff=0.6)
    return f"; did you mean {prefix}{close[0].upper() if prefix else close[0]}?" if close else ""


def _read_toml(path: str) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"HUIHUA_CONFIG={path!r}: no such file; expected a TOML file of settings") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"HUIHUA_CONFIG={path!r}: cannot be read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"HUIHUA_CONFIG={path!r}: not valid TOML ({exc})") from None


def _from_file(path: str, raw: dict[str, Any], sources: dict[str, str], unknown: list[str]) -> None:
    for key, value in _read_toml(path).items():
        if key in SETTINGS:
            raw[key], sources[key] = value, f"file {path}"
        else:
            unknown.append(f"{path}: {key!r} is not a setting{_nearest(key)}")


def _from_env(
    env: Mapping[str, str], raw: dict[str, Any], sources: dict[str, str], unknown: list[str]
) -> None:
    for name, value in sorted(env.items()):
        if not name.startswith("HUIHUA_") or name in NOT_SETTINGS or name.startswith(TOOLS):
            continue
        key = name.removeprefix("HUIHUA_").lower()
        if key not in SETTINGS or name != SETTINGS[key].env:
            unknown.append(f"{name} is not a setting{_nearest(key, 'HUIHUA_')}")
        elif value != "":  # set but empty: unset
            raw[key], sources[key] = value, "env"


def load(env: Mapping[str, str] | None = None, **overrides: Any) -> Loaded:
    """Read and check every setting (the file, then the environment, then `overrides`);
    ConfigError has a line for each value that does not fit."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    sources: dict[str, str] = {}
    unknown: list[str] = []
    if path := env.get("HUIHUA_CONFIG"):
        _from_file(path, raw, sources, unknown)
    _from_env(env, raw, sources, unknown)
    for key, value in overrides.items():
        if value is not None:
            raw[key], sources[key] = value, "argument"
    parsed: dict[str, Any] = {}
    errors: list[str] = []
    for key, value in sorted(raw.items(), key=lambda item: _ORDER.get(item[0], len(_ORDER))):
        try:
            parsed[key] = SETTINGS[key].parse(value) if key in SETTINGS else value
        except ConfigError as exc:
            errors.append(str(exc))
    if errors:
        raise ConfigError("\n".join(errors))
    return Loaded(Settings(**parsed), {n: sources.get(n, "default") for n in SETTINGS}, tuple(unknown))


def markdown_table() -> str:
    """The README's table of settings, one row each, as declared."""
    rows = ["| setting | meaning | default |", "|---|---|---|"]
    for d in SETTINGS.values():
        name = f"`{d.env}`" + (f" / `{d.option}`" if d.option else "")
        rows.append(f"| {name} | {d.doc} | {d.readme_default()} |")
    return "\n".join(rows) + "\n"
