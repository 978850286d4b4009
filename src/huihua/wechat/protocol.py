"""The WeChat API without I/O: what to send, how to read answers, and flows of several calls.

A flow is a generator written once (httpx's `Auth.auth_flow` idea): it yields operations (`Send`,
`Sleep`, and the store's `KvGet`/`KvSet`/`KvDelete`) and receives their results; `WeChatClient`
and `AsyncWeChatClient` are the two small drivers that perform them. So the retry policy, the
token cache and the reactive token refresh exist once, for both twins.

(Over 300 lines because it is the whole wire protocol, requests, answers and the retry/token
flows, with no I/O; a driver needs nothing else, and a change to one WeChat call stays here.)
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from .crypto import login_signature
from .errors import REFRESHABLE, InvalidToken, WeChatError, WeChatUnavailable, error_for

T = TypeVar("T")

log = logging.getLogger("huihua.wechat")

_SENSITIVE = frozenset({"secret", "js_code", "access_token", "session_key"})


# -- operations a flow asks its driver to perform ---------------------------------------------
@dataclass(frozen=True, repr=False)
class ApiRequest:
    method: str
    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    json: Mapping[str, Any] | None = None
    #: safe to send again after it may have reached WeChat (a code is not: it would be "used")
    idempotent: bool = True
    #: values to scrub from errors about this request (the secret, the access token)
    redact: tuple[str, ...] = ()

    def __repr__(self) -> str:
        shown = {k: ("***" if k in _SENSITIVE else v) for k, v in self.params.items()}
        return f"ApiRequest({self.method} {self.path} {shown})"


@dataclass(frozen=True)
class ApiResponse:
    status_code: int
    content: bytes


@dataclass(frozen=True)
class NetworkFailure:
    """The request got no answer. `maybe_sent`: it may have reached WeChat before failing."""

    reason: str
    maybe_sent: bool


@dataclass(frozen=True)
class Send:
    request: ApiRequest


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class KvGet:
    key: str
    now: float


@dataclass(frozen=True)
class KvSet:
    key: str
    value: str
    now: float
    ttl: float
    only_if_absent: bool = False


@dataclass(frozen=True)
class KvDelete:
    key: str
    if_value: str | None = None


Op = Send | Sleep | KvGet | KvSet | KvDelete
Flow = Generator[Op, Any, T]


def network_failure(exc: httpx.TransportError) -> NetworkFailure:
    """Classify an httpx error: failures before any byte left are always safe to retry."""
    unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    return NetworkFailure(reason=type(exc).__name__, maybe_sent=not unsent)


# -- results -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Code2SessionResult:
    openid: str
    session_key: str = field(repr=False)
    unionid: str | None = None


@dataclass(frozen=True)
class AccessToken:
    value: str = field(repr=False)
    expires_in: int


@dataclass(frozen=True)
class PhoneInfo:
    phone_number: str
    pure_phone_number: str
    country_code: str


# -- answers -----------------------------------------------------------------------------------
def _scrub(text: str, redact: Sequence[str]) -> str:
    for value in redact:
        if value:
            text = text.replace(value, "***")
    return text


def decode(outcome: ApiResponse | NetworkFailure, redact: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON body of a successful answer, or the typed error it carries.

    Business errors come as HTTP 200 with an errcode; a missing errcode means 0 (live answers
    stopped sending it); the Content-Type is ignored (WeChat sometimes says text/plain).
    """
    if isinstance(outcome, NetworkFailure):
        raise WeChatUnavailable(f"no answer from WeChat ({outcome.reason})")
    status = outcome.status_code
    try:
        body = json.loads(outcome.content)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        what = f"HTTP {status}" if status != 200 else "an answer that is not a JSON object"
        hint = " (is api_base right?)" if 400 <= status < 500 else ""
        raise WeChatUnavailable(f"WeChat sent {what}{hint}")
    raw_code = body.get("errcode", 0)
    try:
        errcode = int(raw_code) if raw_code is not None else 0
    except (TypeError, ValueError):
        raise WeChatUnavailable(f"WeChat sent a non-numeric errcode {raw_code!r}") from None
    if errcode != 0:
        raise error_for(errcode, _scrub(str(body.get("errmsg", "")), redact))
    if status >= 400:
        raise WeChatUnavailable(f"WeChat sent HTTP {status}")
    return body


def _required_str(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise WeChatUnavailable(f"WeChat's answer has no {name}")
    return value


def parse_code2session(body: Mapping[str, Any]) -> Code2SessionResult:
    unionid = body.get("unionid")
    return Code2SessionResult(
        openid=_required_str(body, "openid"),
        session_key=_required_str(body, "session_key"),
        unionid=unionid if isinstance(unionid, str) and unionid else None,
    )  # expires_in, when an old account still gets it, means nothing: ignored


def parse_access_token(body: Mapping[str, Any]) -> AccessToken:
    try:
        expires_in = int(body.get("expires_in", 7200))
    except (TypeError, ValueError):
        raise WeChatUnavailable("WeChat's token answer has a bad expires_in") from None
    return AccessToken(value=_required_str(body, "access_token"), expires_in=expires_in)


def parse_phone_info(body: Mapping[str, Any]) -> PhoneInfo:
    info = body.get("phone_info")
    if not isinstance(info, dict):
        raise WeChatUnavailable("WeChat's answer has no phone_info")
    country = info.get("countryCode")  # documented as a string, shown as the number 86
    if not isinstance(country, str | int) or isinstance(country, bool):
        raise WeChatUnavailable("WeChat's phone_info has no countryCode")
    return PhoneInfo(
        phone_number=_required_str(info, "phoneNumber"),
        pure_phone_number=_required_str(info, "purePhoneNumber"),
        country_code=str(country),
    )


# -- requests ----------------------------------------------------------------------------------
def code2session_request(appid: str, secret: str, code: str) -> ApiRequest:
    params = {"appid": appid, "secret": secret, "js_code": code, "grant_type": "authorization_code"}
    return ApiRequest("GET", "/sns/jscode2session", params, idempotent=False, redact=(secret,))


def access_token_request(appid: str, secret: str) -> ApiRequest:
    params = {"grant_type": "client_credential", "appid": appid, "secret": secret}
    return ApiRequest("GET", "/cgi-bin/token", params, redact=(secret,))


def stable_token_request(appid: str, secret: str, *, force_refresh: bool = False) -> ApiRequest:
    body = {
        "grant_type": "client_credential",
        "appid": appid,
        "secret": secret,
        "force_refresh": force_refresh,
    }
    return ApiRequest(
        "POST", "/cgi-bin/stable_token", json=body, idempotent=not force_refresh, redact=(secret,)
    )


def _signed(path: str, token: str, openid: str, session_key: str, *, idempotent: bool) -> ApiRequest:
    params = {
        "access_token": token,
        "openid": openid,
        "signature": login_signature(session_key),
        "sig_method": "hmac_sha256",
    }
    return ApiRequest("GET", path, params, idempotent=idempotent, redact=(token, session_key))


def check_session_request(token: str, openid: str, session_key: str) -> ApiRequest:
    return _signed("/wxa/checksession", token, openid, session_key, idempotent=True)


def reset_session_request(token: str, openid: str, session_key: str) -> ApiRequest:
    return _signed("/wxa/resetusersessionkey", token, openid, session_key, idempotent=False)


def phone_number_request(token: str, code: str, openid: str | None = None) -> ApiRequest:
    body = {"code": code} if openid is None else {"code": code, "openid": openid}
    return ApiRequest(
        "POST",
        "/wxa/business/getuserphonenumber",
        {"access_token": token},
        json=body,
        idempotent=False,  # phone codes are single-use
        redact=(token,),
    )


def paid_unionid_request(
    token: str,
    openid: str,
    *,
    transaction_id: str | None = None,
    mch_id: str | None = None,
    out_trade_no: str | None = None,
) -> ApiRequest:
    params = {"access_token": token, "openid": openid}
    if transaction_id is not None:
        params["transaction_id"] = transaction_id
    elif mch_id is not None and out_trade_no is not None:
        params |= {"mch_id": mch_id, "out_trade_no": out_trade_no}
    else:
        raise ValueError("give transaction_id, or mch_id and out_trade_no")
    return ApiRequest("GET", "/wxa/getpaidunionid", params, redact=(token,))


# -- flows -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RetryPolicy:
    """Retry -1 (WeChat: busy, safe to retry) and network failures, nothing else.

    A request that may have reached WeChat is resent only when it is idempotent: a code that
    reached WeChat is spent, and resending it would turn a timeout into 40163.
    """

    retries: int = 2
    backoff: float = 0.1
    max_delay: float = 2.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff with jitter (half fixed, half random) before retry `attempt` + 1."""
        ceiling = min(self.max_delay, self.backoff * 2.0**attempt)
        jitter = random.uniform(0, ceiling / 2)  # noqa: S311 jitter, not crypto
        return ceiling / 2 + jitter

    def should_retry(self, request: ApiRequest, outcome: Any, error: WeChatError) -> bool:
        if isinstance(outcome, NetworkFailure):
            return request.idempotent or not outcome.maybe_sent
        return error.errcode == -1


def call(request: ApiRequest, policy: RetryPolicy) -> Flow[dict[str, Any]]:
    """Send `request` until it succeeds, fails for good, or the retries are spent."""
    attempt = 0
    while True:
        outcome = yield Send(request)
        try:
            return decode(outcome, request.redact)
        except WeChatError as error:
            if attempt >= policy.retries or not policy.should_retry(request, outcome, error):
                raise
            delay = policy.delay(attempt)
            log.warning(
                "WeChat %s failed (%s); retry %d of %d in %.2f s",
                request.path,
                error.errmsg if error.errcode is None else f"errcode {error.errcode}",
                attempt + 1,
                policy.retries,
                delay,
            )
        yield Sleep(delay)
        attempt += 1


class TokenSource:
    """What an authenticated call needs from the token manager (see tokens.TokenCache)."""

    def get(self) -> Flow[str]:
        raise NotImplementedError

    def replace(self, rejected: str) -> Flow[str]:
        raise NotImplementedError


def call_with_token(
    build: Callable[[str], ApiRequest], tokens: TokenSource, policy: RetryPolicy
) -> Flow[dict[str, Any]]:
    """Call with the shared access token; on 40001/42001 refresh it ONCE and retry ONCE."""
    token = yield from tokens.get()
    try:
        return (yield from call(build(token), policy))
    except InvalidToken as error:
        if error.errcode not in REFRESHABLE:
            raise
    token = yield from tokens.replace(token)
    return (yield from call(build(token), policy))
