"""Request bodies and documented answers of the v1 API (for validation and /docs)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ..accounts.passwords import MAX_PASSWORD_BYTES
from ..accounts.users import MAX_USERNAME_CHARS, MIN_USERNAME_CHARS, USERNAME_RULE

MAX_SAFE_INTEGER = 2**53 - 1
_NAME = Field(min_length=1, max_length=256)
_PASSWORD = Field(min_length=1, max_length=MAX_PASSWORD_BYTES)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class AccountIn(Body):
    # The bounds are documented, not enforced here: the rule counts characters after NFKC and case
    # folding, which no JSON Schema pattern can express, so accounts/users.py checks it and answers
    # 422 invalid_username with the rule (a bound here would answer a bare invalid_request).
    username: str = Field(
        min_length=1,
        max_length=MAX_USERNAME_CHARS * 4,
        description=f"{USERNAME_RULE}; stored normalised, so `Alice` and `alice` are one name",
        examples=["alice", "张三"],
        json_schema_extra={"minLength": MIN_USERNAME_CHARS, "maxLength": MAX_USERNAME_CHARS},
    )
    password: str = _PASSWORD
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=32)


class LoginIn(Body):
    username: str = _NAME
    password: str = _PASSWORD


class LogoutAllIn(Body):
    keep_current: bool = False


class PasswordIn(Body):
    current_password: str = _PASSWORD
    new_password: str = _PASSWORD
    unlink_identities: bool = Field(
        default=False, description="also unlink every WeChat identity bound to the account"
    )


class UnlinkIn(Body):
    password: str = _PASSWORD


def _json_integer(value: Any) -> Any:
    """What JSON Schema calls an integer: a number with no fraction; never a boolean or a string."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")  # noqa: TRY004 (pydantic turns ValueError into a 422)
    return value


# A step of incr: a JSON integer (`2.0` is one, `false` and `"2"` are not), and a safe one
# (|step| < 2**53): exact in JavaScript clients and in JSON Schema validators that compare numbers
# as doubles (a bound of 2**63 - 1 is not: they would call 2**63 valid). Totals keep 64 bits.
Step = Annotated[int, BeforeValidator(_json_integer), Field(ge=-MAX_SAFE_INTEGER, le=MAX_SAFE_INTEGER)]


class DataPatchIn(Body):
    set: dict[str, Any] | None = None
    unset: list[str] | None = Field(default=None, max_length=1000)
    incr: dict[str, Step] | None = None


class IntrospectIn(Body):
    token: str = Field(max_length=512)


class UserOut(BaseModel):
    id: str
    username: str | None
    email: str | None
    phone: str | None
    created_at: str


_ABSOLUTE = Field(description="when the session ends however active it is (the absolute lifetime)")
_EXPIRES = Field(
    description="the earlier of idle_expires_at and absolute_expires_at: when it ends if left alone"
)


class SessionOut(BaseModel):
    id: str
    client: str
    created_at: str
    last_seen_at: str
    idle_expires_at: str | None
    absolute_expires_at: str = _ABSOLUTE
    expires_at: str = _EXPIRES


class SessionListItem(BaseModel):
    id: str
    client: str
    ip: str | None
    user_agent: str | None
    created_at: str
    last_seen_at: str
    absolute_expires_at: str = _ABSOLUTE
    expires_at: str = _EXPIRES
    current: bool


class AuthOut(BaseModel):
    user: UserOut
    session: SessionOut
    token: str | None = Field(default=None, description="header clients only; browsers get a cookie")


class MeOut(BaseModel):
    user: UserOut
    session: SessionOut


class UserEnvelope(BaseModel):
    user: UserOut


class SessionsOut(BaseModel):
    sessions: list[SessionListItem]


class DataOut(BaseModel):
    data: dict[str, Any]
    token: str | None = None


class IntrospectOut(BaseModel):
    active: bool
    reason: str | None = None
    user: UserOut | None = None
    session: SessionOut | None = None
    data: dict[str, Any] | None = None


class IdentityOut(BaseModel):
    id: str = Field(description="a public id of this link (not the openid)")
    provider: str = Field(description='"wechat"')
    appid: str
    bound_at: str
    last_used_at: str | None = Field(description="the last login with it; null if none was recorded")


class IdentitiesOut(BaseModel):
    identities: list[IdentityOut]


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorDetail


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Document the error answers of a route."""
    return {status: {"model": ErrorOut} for status in statuses}
