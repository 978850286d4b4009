"""Django settings for huihua, and the session managers built from them (one per process).

The settings the service also reads mean the same here and are read through the same
declarations (huihua.config.SETTINGS: same names, same checks, same defaults; a bad value is a
ConfigError naming it): HUIHUA_STORE, HUIHUA_MAX_DATA_BYTES, HUIHUA_WECHAT_APPID,
HUIHUA_WECHAT_SECRET, HUIHUA_WECHAT_API_BASE. Django's own:

    SESSION_COOKIE_AGE      absolute lifetime of a browser session (Django's own knob)
    HUIHUA_IDLE_TIMEOUT     idle timeout of a browser session, seconds; None: no idle limit
                            (default 30 minutes, the ASVS L2 figure; see core/policy.py)
    HUIHUA_LIFETIMES        {"miniprogram": {"idle": s, "absolute": s}, ...} other client kinds
    HUIHUA_LEGACY_SESSIONS  accept keys imported by huihua_import_sessions, once each   True

Browser sessions take their absolute lifetime from SESSION_COOKIE_AGE, so the cookie Django sets
and the session behind it end together; the idle timeout is what huihua adds.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from ...config import SETTINGS
from ...core.async_manager import AsyncSessionManager
from ...core.manager import SessionManager
from ...core.policy import DEFAULT_LIFETIMES, MINUTE, ExpiryPolicy, Lifetime
from ...stores import async_store_from_url, store_from_url

DEFAULT_IDLE_TIMEOUT = 30 * MINUTE


@dataclass(frozen=True, slots=True)
class Config:
    store_url: str
    lifetimes: tuple[tuple[str, Lifetime], ...]
    max_data_bytes: int

    def policy(self) -> ExpiryPolicy:
        return ExpiryPolicy(lifetimes=dict(self.lifetimes))


def _lifetime(value: Mapping[str, Any] | Lifetime, default: Lifetime) -> Lifetime:
    if isinstance(value, Lifetime):
        return value
    return Lifetime(idle=value.get("idle", default.idle), absolute=value.get("absolute", default.absolute))


def shared(name: str) -> Any:
    """A setting the service reads too (huihua.config): Django's value, checked the same way, or
    the same default."""
    return SETTINGS[name].parse(getattr(settings, SETTINGS[name].env, None))


def config() -> Config:
    """Read the settings now (they change under override_settings in tests)."""
    lifetimes = dict(DEFAULT_LIFETIMES)
    lifetimes["browser"] = Lifetime(
        idle=getattr(settings, "HUIHUA_IDLE_TIMEOUT", DEFAULT_IDLE_TIMEOUT),
        absolute=float(settings.SESSION_COOKIE_AGE),
    )
    for client, value in getattr(settings, "HUIHUA_LIFETIMES", {}).items():
        lifetimes[client] = _lifetime(value, lifetimes.get(client, lifetimes["browser"]))
    return Config(
        store_url=shared("store"),
        lifetimes=tuple(sorted(lifetimes.items())),
        max_data_bytes=shared("max_data_bytes"),
    )


def legacy_sessions_enabled() -> bool:
    return bool(getattr(settings, "HUIHUA_LEGACY_SESSIONS", True))


_managers: dict[Config, SessionManager] = {}
# Async clients (redis.asyncio) belong to the loop that made them: one manager per loop.
_async_managers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Config, AsyncSessionManager]] = (
    weakref.WeakKeyDictionary()
)


def manager() -> SessionManager:
    cfg = config()
    found = _managers.get(cfg)
    if found is None:
        found = SessionManager(
            store_from_url(cfg.store_url), policy=cfg.policy(), max_data_bytes=cfg.max_data_bytes
        )
        found = _managers.setdefault(cfg, found)
    return found


def async_manager() -> AsyncSessionManager:
    cfg = config()
    per_loop = _async_managers.setdefault(asyncio.get_running_loop(), {})
    found = per_loop.get(cfg)
    if found is None:
        found = AsyncSessionManager(
            async_store_from_url(cfg.store_url),
            policy=cfg.policy(),
            max_data_bytes=cfg.max_data_bytes,
        )
        per_loop[cfg] = found
    return found
