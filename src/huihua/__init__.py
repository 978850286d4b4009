"""huihua (会话): sessions for WeChat Mini Programs and the web."""

from .core.async_manager import AsyncSessionManager
from .core.clock import Clock, FakeClock, SystemClock
from .core.data import DataChanges
from .core.errors import (
    HuihuaError,
    NotAnInteger,
    SessionDataError,
    SessionDataTooLarge,
    SessionExpired,
    SessionGone,
    SessionInvalid,
    SessionRevoked,
    SessionUnknown,
    StoreFull,
    StoreUnavailable,
)
from .core.events import SessionEvent
from .core.manager import KEEP, SessionManager
from .core.policy import ExpiryPolicy, Lifetime
from .core.session import Session
from .stores import async_store_from_url, store_from_url

__version__ = "0.1.0"

__all__ = [
    "KEEP",
    "AsyncSessionManager",
    "Clock",
    "DataChanges",
    "ExpiryPolicy",
    "FakeClock",
    "HuihuaError",
    "Lifetime",
    "NotAnInteger",
    "Session",
    "SessionDataError",
    "SessionDataTooLarge",
    "SessionEvent",
    "SessionExpired",
    "SessionGone",
    "SessionInvalid",
    "SessionManager",
    "SessionRevoked",
    "SessionUnknown",
    "StoreFull",
    "StoreUnavailable",
    "SystemClock",
    "__version__",
    "async_store_from_url",
    "store_from_url",
]
