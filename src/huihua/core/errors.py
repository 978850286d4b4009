"""Every error huihua answers with, the whole tree in one place.

Each class says what the API answers for it: an HTTP `status`, an error `code`, the message
(`public_message` when the raised text is for the log, not the client) and `headers`
(Retry-After). `answer(exc)` reads them; it is the only translation from an error to the API's
`{"error": {"code", "message"}}` answer, used by the FastAPI handlers (`http/errors.py`) and by
Django's middleware and views alike.

HuihuaError                                                          status  code
├── StoreUnavailable        the store failed; retry later                503  store_unavailable, Retry-After
│   └── StoreFull           the store's disk is full; free space         507  store_full
├── SessionInvalid          the token names no usable session            401
│   ├── SessionUnknown      never issued, malformed or purged                 not_authenticated
│   ├── SessionExpired      idle or absolute deadline passed                  session_expired
│   └── SessionRevoked      logged out, rotated or revoked                    session_revoked
├── SessionGone             a save or rotate found the session deleted   401  session_revoked
│                           meanwhile (no resurrection)
├── SessionDataError        the data change cannot be applied            400  invalid_session_data
│   ├── SessionDataTooLarge over the size cap                            413  session_data_too_large
│   └── NotAnInteger        incr on a value that is not an integer       400  not_an_integer
├── AccountError            the accounts' refusals (huihua.accounts)
│   ├── UsernameTaken       registration: the name is in use             409  username_taken
│   ├── InvalidUsername     not a valid username                         422  invalid_username
│   ├── PasswordRejected    a new password too short or too long         422  password_too_short/_long
│   ├── WrongPassword       unknown user, wrong password, disabled:      401  invalid_credentials
│   │                       one answer; 403 to re-authenticate or bind
│   ├── TooManyAttempts     a login throttle or a per-address limit      429  too_many_attempts (or
│   │                       (Retry-After)                                     too_many_sessions)
│   ├── IdentityNotFound    no identity linked to the account has the id 404  identity_not_found
│   └── LastSignInMethod    unlinking would leave no way to sign in      409  last_sign_in_method
├── Refused                 status and code given where it is raised
│   ├── JsonBodyError       a body not JSON or nested too deep           400  invalid_json/json_too_deep
│   ├── WeChatLoginError    the WeChat login use case (accounts.wechat_login)
│   └── ApiError            the web layer's own (http.errors): 404s, 413 bodies, service key
└── WeChatError             the WeChat API's errors, drawn in huihua.wechat.errors: no answer of
                            their own (the login use case turns them into WeChatLoginErrors with
                            `wechat_login.error_for`); one that escapes answers 500

An error without a status of its own answers 500 `internal_error`, its details for the log only.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar, NamedTuple

_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


class Answer(NamedTuple):
    status: int
    code: str
    message: str
    headers: dict[str, str]


def answer(exc: BaseException) -> Answer:
    """The API's answer to `exc`: status, code, message and headers, for any framework. An
    exception with no answer of its own (a bug, an untranslated WeChatError) is a 500 whose
    details only the log sees."""
    if not isinstance(exc, HuihuaError) or exc.status is None:
        return Answer(500, "internal_error", "an unexpected error; it has been logged", {})
    return Answer(exc.status, exc.code, exc.public_message or str(exc), dict(exc.headers))


class HuihuaError(Exception):
    status: int | None = None  # None: not an answer to a client (see `answer`)
    code: str = "huihua_error"
    public_message: ClassVar[str | None] = None  # said instead of str(exc), which is for the log
    headers: Mapping[str, str] = _NO_HEADERS


# -- the store -----------------------------------------------------------------------------------
class StoreUnavailable(HuihuaError):
    status = 503
    code = "store_unavailable"
    public_message = "the session store is unavailable; retry shortly"
    headers: Mapping[str, str] = MappingProxyType({"Retry-After": "1"})


class StoreFull(StoreUnavailable):
    """The store refused a write for lack of space (SQLite's SQLITE_FULL): an operator must free
    disk space; retrying sooner changes nothing. Still a StoreUnavailable for callers that only
    care that the store did not do it."""

    status = 507
    code = "store_full"
    public_message = "the session store has no space left; free disk space on its server"
    headers = _NO_HEADERS


# -- sessions ------------------------------------------------------------------------------------
class SessionInvalid(HuihuaError):
    status = 401
    code = "not_authenticated"


class SessionUnknown(SessionInvalid):
    code = "not_authenticated"


class SessionExpired(SessionInvalid):
    code = "session_expired"


class SessionRevoked(SessionInvalid):
    code = "session_revoked"


class SessionGone(HuihuaError):
    """Raised instead of writing: the session was revoked, rotated or expired since it was read.
    The client's session is over, so the API says what it says for one revoked."""

    status = 401
    code = "session_revoked"


class SessionDataError(HuihuaError, ValueError):
    status = 400
    code = "invalid_session_data"


class SessionDataTooLarge(SessionDataError):
    status = 413
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


# -- accounts ------------------------------------------------------------------------------------
class AccountError(HuihuaError):
    status = 400
    code = "account_error"


class UsernameTaken(AccountError):
    status = 409
    code = "username_taken"


class InvalidUsername(AccountError, ValueError):
    status = 422
    code = "invalid_username"


class PasswordRejected(AccountError, ValueError):
    status = 422

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class WrongPassword(AccountError):
    """Unknown user, wrong password or disabled account: one answer for all. 401 to log in; 403
    when a signed-in user confirms a change or binds (the session itself is fine)."""

    status = 401
    code = "invalid_credentials"

    def __init__(self, message: str = "the username or password is wrong", *, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


class TooManyAttempts(AccountError):
    status = 429
    code = "too_many_attempts"

    def __init__(self, retry_after: int, message: str | None = None, *, code: str | None = None) -> None:
        super().__init__(message or f"too many failed attempts; try again in {retry_after} s")
        self.retry_after = retry_after
        self.code = code or type(self).code
        self.headers = {"Retry-After": str(retry_after)}


class IdentityNotFound(AccountError):
    status = 404
    code = "identity_not_found"


class LastSignInMethod(AccountError):
    status = 409
    code = "last_sign_in_method"


# -- refusals whose status and code are given where they are raised ------------------------------
class Refused(HuihuaError):
    status: int

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


class JsonBodyError(Refused, ValueError):
    """A body that is not acceptable JSON (`huihua.json_input`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(400, code, message)


class WeChatLoginError(Refused):
    """A refusal of the WeChat login use case (`huihua.accounts.wechat_login`)."""
