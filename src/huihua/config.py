"""Settings, from HUIHUA_* environment variables and an optional TOML file: one typed place.

HUIHUA_STORE            session store URL             sqlite:///./huihua.db
HUIHUA_DATABASE         accounts database URL         the store's SQLite file (else ./huihua.db)
HUIHUA_SECRET_KEY       comma-separated; the first encrypts, all decrypt (rotation)
                        default: generated once into huihua.secret beside the database
HUIHUA_SERVICE_KEY      X-Service-Key for /v1/introspect and /v1/admin; unset: routes off
HUIHUA_WECHAT_APPID, HUIHUA_WECHAT_SECRET, HUIHUA_WECHAT_API_BASE
HUIHUA_ALLOWED_ORIGINS  comma-separated origins allowed for cookie-authenticated writes
HUIHUA_MAX_DATA_BYTES   session data cap (65536)
HUIHUA_TRUST_PROXY      1: take the client IP from X-Forwarded-For (behind a proxy you run)
    HUIHUA_WECHAT_LOGINS_PER_IP_MINUTE  WeChat login attempts per client IP a minute (600)
    HUIHUA_ANONYMOUS_SESSIONS_PER_IP_MINUTE  visitor sessions one client IP may create a minute (600)
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

from .core.clock import Clock, OffsetClock

DEFAULT_STORE = "sqlite:///./huihua.db"
DEFAULT_WECHAT_API_BASE = "https://api.weixin.qq.com"


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
    trust_proxy: bool = False
    cookie_secure: bool | None = None  # None: Secure and __Host- when the request is HTTPS
    sweep_interval: float = 60.0
    # per client IP; generous because mobile carriers put many phones behind one address (CGNAT)
    wechat_logins_per_ip_minute: int = 600
    anonymous_sessions_per_ip_minute: int = 600  # S10: a visitor flood cannot fill the store
    clock_offset: float = 0.0  # testing only: a process whose clock is skewed against the others'
    extra: Mapping[str, Any] = field(default_factory=dict)

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
        `huihua.secret` beside the SQLite database (mode 0600)."""
        if self.secret_key:
            return self
        from .stores import _sqlite_path

        db = self.database_url
        folder = Path(_sqlite_path(db)[0]).parent if db.startswith("sqlite") else Path(".")
        path = folder / "huihua.secret"
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32))
        return replace(self, secret_key=(Secret(path.read_text().strip()),))

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
        return cls(**{k: _coerce(k, v) for k, v in raw.items() if k in _FIELD_NAMES})


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
    ):
        return int(value)
    if name in ("sweep_interval", "clock_offset"):
        return float(value)
    if name in ("trust_proxy", "cookie_secure"):
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
    return value
