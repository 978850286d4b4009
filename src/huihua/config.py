"""Settings, from HUIHUA_* environment variables and an optional TOML file: one typed place.

HUIHUA_STORE            session store URL             sqlite:///./huihua.db
                        (also redis+cluster://h:p,h:p/ and redis+sentinel://h:p,h:p/MASTER/DB)
HUIHUA_DATABASE         accounts database URL         the store's SQLite file (else ./huihua.db)
HUIHUA_SECRET_KEY       comma-separated; the first encrypts, all decrypt (rotation); each at
                        least 32 characters. default: generated once into huihua.secret (mode
                        0600) beside the database
HUIHUA_SERVICE_KEY      X-Service-Key for /v1/introspect and /v1/admin; unset: routes off
HUIHUA_WECHAT_APPID, HUIHUA_WECHAT_SECRET, HUIHUA_WECHAT_API_BASE
HUIHUA_ALLOWED_ORIGINS  comma-separated origins allowed for cookie-authenticated writes
HUIHUA_MAX_DATA_BYTES   session data cap (65536)
HUIHUA_TRUST_PROXY      your reverse proxies' addresses or networks, comma-separated
                        (`127.0.0.1,10.0.0.0/8`): only from those peers are X-Forwarded-For (the
                        rightmost hop not in the list is the client) and X-Forwarded-Proto
                        believed; unset: every forwarded header is ignored
HUIHUA_COOKIE_SECURE    1: always `__Host-sid; Secure` cookies; 0: never (plain-HTTP development);
                        unset: Secure when the request is HTTPS (as seen through trusted proxies)
    HUIHUA_WECHAT_LOGINS_PER_IP_MINUTE  WeChat login attempts per client IP a minute (600)
    HUIHUA_ANONYMOUS_SESSIONS_PER_IP_MINUTE  visitor sessions one client IP may create a minute (600)
HUIHUA_LOG_FORMAT       huihua serve's log lines (security events included): text (default) or json
HUIHUA_MAX_SESSIONS_PER_USER  live sessions per user; a new one ends the least recently used (50)
HUIHUA_ANONYMOUS_IDLE_TIMEOUT, HUIHUA_ANONYMOUS_ABSOLUTE_TIMEOUT  visitor session lifetimes, seconds
                        (1800, 86400); HUIHUA_ANONYMOUS_MAX_DATA_BYTES  visitor data cap (8192)
    HUIHUA_REGISTRATIONS_PER_IP_MINUTE  accounts one client IP may register a minute (20)
HUIHUA_CLOCK_OFFSET     testing only: this process's clock runs this many seconds ahead (0)
HUIHUA_CONFIG           a TOML file with the same names in lower case, without the prefix
"""

from __future__ import annotations

import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .core.addresses import Network, parse_networks
from .core.clock import Clock, OffsetClock
from .core.files import write_private_once

DEFAULT_STORE = "sqlite:///./huihua.db"
DEFAULT_WECHAT_API_BASE = "https://api.weixin.qq.com"
MIN_SECRET_CHARS = 32  # token_urlsafe(32) gives 43; anything shorter was typed by hand
GENERATE_SECRET = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'  # noqa: S105 - advice


class ConfigError(ValueError):
    """A setting that cannot work; the message names it and says what to do (one line)."""


class Secret:
    """A string that does not print itself (Starlette's idea): safe in reprs, logs and errors."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and secrets.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def masked_url(url: str) -> str:
    """A URL fit to print: any password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class Settings:
    store: str = DEFAULT_STORE
    database: str | None = None
    secret_key: tuple[Secret, ...] = ()
    service_key: Secret | None = None
    wechat_appid: str | None = None
    wechat_secret: Secret | None = None
    wechat_api_base: str = DEFAULT_WECHAT_API_BASE
    allowed_origins: tuple[str, ...] = ()
    max_data_bytes: int = 64 * 1024
    max_body_bytes: int = 256 * 1024
    trust_proxy: tuple[Network, ...] = ()  # the reverse proxies whose forwarded headers count
    cookie_secure: bool | None = None  # None: Secure and __Host- when the request is HTTPS
    sweep_interval: float = 60.0
    # per client IP; generous because mobile carriers put many phones behind one address (CGNAT)
    wechat_logins_per_ip_minute: int = 600
    anonymous_sessions_per_ip_minute: int = 600  # S10: a visitor flood cannot fill the store
    log_format: str = "text"  # huihua serve's log lines: text, or json (one object a line)
    # ASVS 7.1.2: bounds what one account can store; 50 covers every device a person has
    max_sessions_per_user: int = 50
    anonymous_idle_timeout: float = 30 * 60.0  # visitors: short, anyone can make one
    anonymous_absolute_timeout: float = 86400.0
    anonymous_max_data_bytes: int = 8 * 1024
    registrations_per_ip_minute: int = 20  # each registration costs an argon2 hash
    clock_offset: float = 0.0  # testing only: a process whose clock is skewed against the others'
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:  # also from code: Settings(trust_proxy="10.0.0.0/8") is parsed
        object.__setattr__(self, "trust_proxy", _proxies(self.trust_proxy))
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"HUIHUA_LOG_FORMAT must be text or json, not {self.log_format!r}")

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

    def with_secret_key(self) -> Settings:
        """Fill in the secret key: the configured one, or one generated once and kept in
        `huihua.secret` beside the SQLite database (mode 0600). A key shorter than 32
        characters is refused (ConfigError): it would be guessable."""
        if self.secret_key:
            if short := [k for k in self.secret_key if len(k.reveal()) < MIN_SECRET_CHARS]:
                raise ConfigError(
                    f"HUIHUA_SECRET_KEY: every key needs at least {MIN_SECRET_CHARS} characters "
                    f"(one has {len(short[0].reveal())}); generate one with: {GENERATE_SECRET}"
                )
            return self
        from .stores import sqlite_path as _sqlite_path

        db = self.database_url
        folder = Path(_sqlite_path(db)[0]).parent if db.startswith("sqlite") else Path(".")
        path = folder / "huihua.secret"
        if path.exists():
            text = path.read_text().strip()
        else:
            folder.mkdir(parents=True, exist_ok=True)
            text = write_private_once(path, secrets.token_urlsafe(32)).strip()
        if len(text) < MIN_SECRET_CHARS:
            raise ConfigError(
                f"{path} holds {'no' if not text else 'a short'} secret ({len(text)} characters, at least "
                f"{MIN_SECRET_CHARS}): write a new one with: {GENERATE_SECRET} > {path}"
            )
        return replace(self, secret_key=(Secret(text),))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if env is None else env
        raw: dict[str, Any] = {}
        if config_file := env.get("HUIHUA_CONFIG"):
            raw.update(tomllib.loads(Path(config_file).read_text()))
        for f in fields(cls):
            value = env.get(f"HUIHUA_{f.name.upper()}")
            if value is not None and value != "":
                raw[f.name] = value
        raw.update({k: v for k, v in overrides.items() if v is not None})
        coerced = {}
        for k, v in raw.items():
            if k in _FIELD_NAMES:
                try:
                    coerced[k] = _coerce(k, v)
                except ConfigError:
                    raise
                except ValueError as exc:
                    raise ConfigError(f"HUIHUA_{k.upper()}: {exc}") from None
        return cls(**coerced)


_FIELD_NAMES = {f.name for f in fields(Settings)}


def _split(value: Any) -> list[str]:
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    return [str(i).strip() for i in items if str(i).strip()]


def _coerce(name: str, value: Any) -> Any:  # noqa: PLR0911 - one branch per kind of setting
    if name in ("secret_key",):
        return tuple(Secret(v) for v in _split(value))
    if name in ("service_key", "wechat_secret"):
        return value if isinstance(value, Secret) else Secret(str(value))
    if name == "allowed_origins":
        return tuple(o.rstrip("/") for o in _split(value))
    if name in (
        "max_data_bytes",
        "max_body_bytes",
        "wechat_logins_per_ip_minute",
        "anonymous_sessions_per_ip_minute",
        "max_sessions_per_user",
        "anonymous_max_data_bytes",
        "registrations_per_ip_minute",
    ):
        return int(value)
    if name in ("sweep_interval", "anonymous_idle_timeout", "anonymous_absolute_timeout", "clock_offset"):
        return float(value)
    if name == "trust_proxy":
        return _proxies(value)
    if name == "log_format":
        return str(value).strip().lower()
    if name == "cookie_secure":
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
    return value


def _proxies(value: Any) -> tuple[Network, ...]:
    """HUIHUA_TRUST_PROXY: addresses or networks. The old boolean is refused rather than read as
    "trust every peer", which would let any client write its own address."""
    if value is False or (
        isinstance(value, str) and value.strip().lower() in ("", "0", "false", "no", "off")
    ):
        return ()
    if value is True or (isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on")):
        raise ConfigError(
            "HUIHUA_TRUST_PROXY no longer takes a yes/no: list your reverse proxies' addresses or "
            "networks, e.g. HUIHUA_TRUST_PROXY=127.0.0.1 or 127.0.0.1,10.0.0.0/8"
        )
    try:
        return parse_networks(_split(value))
    except ValueError as exc:
        raise ConfigError(
            f"HUIHUA_TRUST_PROXY: {exc}; list your reverse proxies' addresses or networks, "
            "comma-separated, e.g. 127.0.0.1,10.0.0.0/8"
        ) from None
