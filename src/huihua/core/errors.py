"""The errors of the session engine.

HuihuaError
├── StoreUnavailable          the store could not be reached or failed; retry later (503)
│   └── StoreFull             the store's disk is full; free space (507)
├── SessionInvalid            the presented token names no usable session (401)
│   ├── SessionUnknown        never issued, malformed, or purged  -> not_authenticated
│   ├── SessionExpired        idle or absolute deadline passed    -> session_expired
│   └── SessionRevoked        logged out, rotated or revoked      -> session_revoked
├── SessionGone               a save or rotate found the session deleted meanwhile (no resurrection)
└── SessionDataError          the data change cannot be applied (400/413)
    ├── SessionDataTooLarge   over the size cap
    └── NotAnInteger          incr on a value that is not an integer
"""

from __future__ import annotations


class HuihuaError(Exception):
    code = "huihua_error"


class StoreUnavailable(HuihuaError):
    code = "store_unavailable"


class StoreFull(StoreUnavailable):
    """The store refused a write for lack of space (SQLite's SQLITE_FULL): an operator must free
    disk space; retrying sooner changes nothing. Still a StoreUnavailable for callers that only
    care that the store did not do it."""

    code = "store_full"


class SessionInvalid(HuihuaError):
    code = "not_authenticated"


class SessionUnknown(SessionInvalid):
    code = "not_authenticated"


class SessionExpired(SessionInvalid):
    code = "session_expired"


class SessionRevoked(SessionInvalid):
    code = "session_revoked"


class SessionGone(HuihuaError):
    """Raised instead of writing: the session was revoked, rotated or expired since it was read."""

    code = "session_gone"


class SessionDataError(HuihuaError, ValueError):
    code = "invalid_session_data"


class SessionDataTooLarge(SessionDataError):
    code = "session_data_too_large"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"session data would be {size} bytes; the limit is {limit}")
        self.size = size
        self.limit = limit


class NotAnInteger(SessionDataError):
    code = "not_an_integer"

    def __init__(self, key: str) -> None:
        super().__init__(f"cannot increment {key!r}: its value is not an integer")
        self.key = key
