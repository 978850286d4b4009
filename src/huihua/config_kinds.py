"""The kinds of value a setting takes: how each is read from a string, a TOML value or Python,
and what is said when it does not fit (ConfigError, one line: the setting, the value, what is
expected), and `setting()`, which declares one (kind, default, meaning) as a field of
huihua.config.Settings, where every setting is declared.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .core.addresses import parse_networks


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
class Kind:
    """`parse` turns a value into the setting's type or raises ValueError (its text, if any,
    follows `expected` in the message); `secret` values are never shown."""

    expected: str
    parse: Callable[[Any], Any]
    secret: bool = False


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _items(value: Any) -> list[str]:
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    return [str(i).strip() for i in items if str(i).strip()]


def _require_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError
    return value


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError
    try:
        number = int(value)
    except ValueError:
        raise ValueError from None  # int()'s own words say less than what is expected
    if number < 0:
        raise ValueError
    return number


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError
    try:
        return float(value)
    except ValueError:
        raise ValueError from None


def _switch(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise ValueError


def _secret(value: Any) -> Secret:
    return value if isinstance(value, Secret) else Secret(_require_str(value))


def _secrets(value: Any) -> tuple[Secret, ...]:
    if isinstance(value, Secret):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, Secret) for v in value):
        return tuple(value)
    return tuple(Secret(v) for v in _items(value))


def _networks(value: Any) -> tuple[Any, ...]:
    """The old boolean is refused rather than read as "trust every peer", which would let any
    client write its own address."""
    if value is False or value is None or (isinstance(value, str) and value.strip().lower() in ("", *_FALSE)):
        return ()
    if value is True or (isinstance(value, str) and value.strip().lower() in _TRUE):
        raise ValueError("it no longer takes a yes/no")
    if isinstance(value, list | tuple) and not any(isinstance(v, str) for v in value):
        return tuple(value)  # already networks (Settings built by replace())
    return parse_networks(_items(value))


def _choice(*words: str) -> Kind:
    def parse(value: Any) -> str:
        word = _require_str(value).strip().lower()
        if word not in words:
            raise ValueError
        return word

    return Kind(" or ".join(words), parse)


_REDIS = re.compile(r"([^@/]*@)?(\[[0-9a-fA-F:.]+\]|[^@/:\[\]]+)(:\d{1,5})?(/\d{0,5})?(\?.*)?")
# scheme -> what must follow "scheme://"; redis+cluster and redis+sentinel are parsed in full
_SCHEMES = {
    "memory": re.compile(r"[A-Za-z0-9_.-]*/?"),
    "sqlite": re.compile(r"/?[^?#]+(\?[^#]*)?"),
    "redis": _REDIS,
    "rediss": _REDIS,
    "unix": re.compile(r"([^@/]*@)?/[^?#]+(\?.*)?"),
    "postgresql": re.compile(r"([^@/]*@)?[^@/]*(/[^/?#]*)?(\?.*)?"),
    "postgres": re.compile(r"([^@/]*@)?[^@/]*(/[^/?#]*)?(\?.*)?"),
    "redis+cluster": re.compile(r".*"),
    "redis+sentinel": re.compile(r".*"),
}
STORE_SCHEMES = (
    "memory://, sqlite:///path, redis://host:6379/0, rediss://, unix:///socket, redis+cluster://h:p,h:p/, "
    "redis+sentinel://h:p,h:p/MASTER/DB or postgresql://user@host/db"
)


def _url(what: str, schemes: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        url = _require_str(value).strip()
        scheme, sep, rest = url.partition("://")
        if not sep:
            raise ValueError("no '://' after the scheme")
        if scheme not in schemes:
            raise ValueError(f"unknown {what} URL scheme {scheme!r}")
        if not _SCHEMES[scheme].fullmatch(rest):
            raise ValueError(f"not a {scheme}:// URL")
        if scheme in ("redis+cluster", "redis+sentinel"):
            from .stores import redis_urls

            (redis_urls.parse_cluster_url if scheme == "redis+cluster" else redis_urls.parse_sentinel_url)(
                url
            )
        else:
            urlsplit(url).port  # noqa: B018 - raises ValueError on a port out of range
        return url

    return parse


TEXT = Kind("text", _require_str)
COUNT = Kind("a whole number, e.g. 65536", _integer)
SECONDS = Kind("a number of seconds, e.g. 60 or 0.5", _seconds)
SWITCH = Kind("1 or 0 (also true/false, yes/no, on/off)", _switch)
SECRET = Kind("text", _secret, secret=True)
SECRETS = Kind("comma-separated keys", _secrets, secret=True)
ORIGINS = Kind(
    "comma-separated origins, e.g. https://example.com", lambda v: tuple(o.rstrip("/") for o in _items(v))
)
_ORIGIN = re.compile(r"(https?)://([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\])(?::(\d{1,5}))?")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _cors_origins(value: Any) -> tuple[str, ...]:
    """Exact origins as a browser sends them in `Origin` (lower case, no default port); `*` is
    refused because these origins are allowed credentials, and a wildcard with credentials would
    let any site read a signed-in user's answers."""
    origins: list[str] = []
    for item in _items(value):
        if "*" in item:
            raise ValueError(f"{item!r}: no wildcards, name each origin (they are allowed credentials)")
        match = _ORIGIN.fullmatch(item.lower().removesuffix("/"))
        if match is None:
            raise ValueError(f"{item!r} is not scheme://host[:port] (http or https, no path, query or user)")
        scheme, host, port = match.groups()
        if port is not None and not 0 < int(port) < 65536:
            raise ValueError(f"{item!r}: port {port} out of range")
        default = port is None or int(port) == _DEFAULT_PORTS[scheme]
        origins.append(f"{scheme}://{host}" if default else f"{scheme}://{host}:{int(port)}")
    return tuple(dict.fromkeys(origins))


CORS_ORIGINS = Kind(
    "comma-separated origins, each scheme://host[:port], e.g. https://app.example.com", _cors_origins
)
NETWORKS = Kind(
    "your reverse proxies' addresses or networks, comma-separated, e.g. 127.0.0.1,10.0.0.0/8", _networks
)
LOG_FORMAT = _choice("text", "json")
STORE_URL = Kind(f"a store URL: {STORE_SCHEMES}", _url("store", tuple(_SCHEMES)))
DATABASE_URL = Kind(
    "an accounts database URL: sqlite:///path or postgresql://user@host/db",
    _url("database", ("sqlite", "postgresql", "postgres")),
)


@dataclass(frozen=True)
class Declared:
    """One setting as declared: `shown` replaces the default in the README when it is not a
    literal; `note` follows a literal default; `option` is `huihua serve`'s flag for it."""

    name: str
    kind: Kind
    default: Any
    doc: str
    shown: str = ""
    note: str = ""
    option: str = ""

    @property
    def env(self) -> str:
        return f"HUIHUA_{self.name.upper()}"

    def parse(self, value: Any) -> Any:
        """The value as the setting's type; ConfigError (one line) when it does not fit."""
        if value is None:
            return self.default
        try:
            return self.kind.parse(value)
        except (ValueError, TypeError) as exc:
            shown = "***" if self.kind.secret else masked_url(str(value))
            why = f"{exc}; " if str(exc) and not isinstance(exc, TypeError) else ""
            raise ConfigError(f"{self.env}={shown!r}: {why}expected {self.kind.expected}") from None

    def show(self, value: Any) -> str:
        """The value fit to print (doctor): secrets only as set or unset."""
        if self.kind.secret:
            return "set" if value else "unset"
        if value is None or value == ():
            return "unset"
        if isinstance(value, tuple):
            return ",".join(str(v) for v in value)
        return (
            masked_url(value)
            if isinstance(value, str)
            else f"{value:g}"
            if isinstance(value, float)
            else str(value)
        )

    def readme_default(self) -> str:
        if self.shown:
            return self.shown
        literal = f"`{self.default}`" if isinstance(self.default, str) else self.show(self.default)
        return f"{literal} ({self.note})" if self.note else literal


def setting(default: Any, kind: Kind, doc: str, **more: str) -> Any:
    """A field of Settings that is a setting: its kind, default and meaning in one place."""
    return field(default=default, metadata={"setting": (kind, doc, more)})
