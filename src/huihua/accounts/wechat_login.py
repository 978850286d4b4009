"""The WeChat login use case, for any framework: code -> code2Session -> user -> session, once.

The use case is written once, as generator *flows* (httpx's `auth_flow` idea): a flow yields
operations and receives their results; `flow.run` (sync: Django) and `flow.arun` (async: the
service) perform them. An operation is a call on one of three targets the framework hands in:

    "wechat"     the WeChat client (WeChatClient / AsyncWeChatClient)
    "store"      the session store's key-value space, shared by every worker (Store / AsyncStore)
    "directory"  the framework's users, identities and sessions (`wechat_directory`)

So the decisions (the idempotent exchange, find-or-create, what may be bound, which errors) exist
once, and a framework only says how to find a user or start a session.

Idempotent exchange. A code that reached us is sent to WeChat once. The first request claims it
in the store, with the hash of its `Idempotency-Key` (a random value the client makes per login
attempt, kept in memory only); the outcome stays there for the code's 5-minute life, the session
token sealed. A retry with the same code *and the same key* gets the same outcome; the same code
with no key or another key gets `wechat_code_used` and no token, so a code that leaked (logs,
proxies, the emulator's /calls) does not hand out its owner's session. A first request without a
key still logs in; nobody can collect a retry of it. A concurrent duplicate with the right key
waits for the first. Transient failures (WeChat busy or down) release the claim so a retry may
try again; definitive ones (invalid, used, blocked, bad open data) are remembered.

Errors are `WeChatLoginError`s (`core/errors.py`) carrying the API `code` and HTTP `status`;
`core.errors.answer` turns them into the same `{"error": {"code", "message"}}` answer for FastAPI
and Django.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core.clock import Clock
from ..core.errors import WeChatLoginError
from ..json_input import JsonBodyError, parse_json_body
from ..wechat import errors as wx
from ..wechat.crypto import decrypt_data, verify_raw_signature
from .flow import Flow, Sleep, arun, call, run
from .sealing import SecretBox
from .wechat_directory import AsyncWeChatDirectory, Member, Outcome, WeChatDirectory

__all__ = [
    "AsyncWeChatDirectory",
    "Flow",
    "Member",
    "OpenData",
    "Outcome",
    "WeChatDirectory",
    "WeChatLogin",
    "WeChatLoginError",
    "arun",
    "check_idempotency_key",
    "error_for",
    "run",
]


CODE_LIFETIME = 300.0  # a wx.login code lives 5 minutes: so does what we remember of it
CLAIM_TTL = 30.0  # a claim whose holder died frees itself
WAIT_STEP, WAITS = 0.05, 100  # a concurrent duplicate waits up to ~5 s for the first
IDEMPOTENCY_KEY = re.compile(r"\A[A-Za-z0-9._~+/=:-]{16,128}\Z")
_SIGNATURE = re.compile(r"\A[0-9a-fA-F]{40}\Z")
_TRANSIENT = frozenset({"wechat_unavailable", "wechat_rate_limited"})  # a retry may pass: release


# -- errors ------------------------------------------------------------------------------------
def code_used() -> WeChatLoginError:
    return WeChatLoginError(400, "wechat_code_used", "this login code was already used; call wx.login again")


def error_for(exc: wx.WeChatError) -> WeChatLoginError:
    """What a client sees of a WeChat failure: a clear code, never WeChat's secrets."""
    if isinstance(exc, wx.CodeUsed):
        return code_used()
    if isinstance(exc, wx.InvalidCode):
        return WeChatLoginError(
            400, "wechat_code_invalid", "this login code is invalid or expired; call wx.login again"
        )
    if isinstance(exc, wx.UserBlocked):
        return WeChatLoginError(403, "wechat_user_blocked", "WeChat blocks login for this user")
    if isinstance(exc, wx.RateLimited):
        return WeChatLoginError(
            429,
            "wechat_rate_limited",
            "WeChat's rate limit was reached; retry in a minute",
            {"Retry-After": "60"},
        )
    if isinstance(exc, wx.WeChatDataError):
        return data_invalid(f"the encrypted user data could not be used: {exc.code}")
    return WeChatLoginError(
        503, "wechat_unavailable", "WeChat is unavailable; retry shortly", {"Retry-After": "1"}
    )


def data_invalid(message: str) -> WeChatLoginError:
    return WeChatLoginError(400, "wechat_data_invalid", message)


def check_idempotency_key(value: str | None) -> str | None:
    """The `Idempotency-Key` header as given, None when absent; 400 when it is not 16 to 128
    characters of letters, digits and `. _ ~ + / = : -`."""
    if value is None:
        return None
    if not IDEMPOTENCY_KEY.match(value):
        raise WeChatLoginError(
            400,
            "idempotency_key_invalid",
            "Idempotency-Key must be 16 to 128 characters: letters, digits and . _ ~ + / = : -",
        )
    return value


@dataclass(frozen=True)
class OpenData:
    """What wx.getUserInfo hands the mini program, sent along with the code."""

    raw_data: str | None = None
    signature: str | None = None
    encrypted_data: str | None = None
    iv: str | None = None

    @classmethod
    def of(cls, fields: Mapping[str, Any]) -> OpenData | None:
        """From a request body's optional fields; None when there are none. 400 when a field is
        not a string, raw_data is not a JSON object or comes without a signature, or
        encrypted_data comes without its iv: all before any session exists."""
        names = ("raw_data", "signature", "encrypted_data", "iv")
        given = {n: fields[n] for n in names if fields.get(n) is not None}
        if not given:
            return None
        if not all(isinstance(v, str) for v in given.values()):
            raise data_invalid("raw_data, signature, encrypted_data and iv are strings")
        data = cls(**given)
        if data.raw_data is not None:
            try:  # nested too deep: json.loads would raise RecursionError, a 500
                parsed = parse_json_body(data.raw_data)
            except JsonBodyError:
                parsed = None
            if not isinstance(parsed, dict):
                raise data_invalid("raw_data must be a JSON object, as wx.getUserInfo gives it")
            if data.signature is None or not _SIGNATURE.match(data.signature):
                raise data_invalid("raw_data needs its signature (40 hex digits) from wx.getUserInfo")
        elif data.signature is not None:
            raise data_invalid("a signature without the raw_data it signs")
        if (data.encrypted_data is None) != (data.iv is None):
            raise data_invalid("encrypted_data and iv come together")
        return data

    def profile(self, session_key: str, appid: str) -> dict[str, Any]:
        """The verified profile: raw_data's signature checked, encrypted_data decrypted."""
        try:
            if self.raw_data is not None and self.signature is not None:
                verify_raw_signature(self.raw_data, session_key, self.signature)
            if self.encrypted_data is not None and self.iv is not None:
                profile = decrypt_data(session_key, self.encrypted_data, self.iv, appid=appid)
            else:
                profile = json.loads(self.raw_data or "{}")
        except wx.WeChatDataError as exc:
            raise error_for(exc) from exc
        profile.pop("watermark", None)
        return dict(profile)


# -- the use case --------------------------------------------------------------------------------
class WeChatLogin:
    """The flows of WeChat login for one mini program (`appid`); `box` seals what is kept."""

    def __init__(self, *, appid: str, box: SecretBox, clock: Clock) -> None:
        self.appid = appid
        self.box = box
        self.clock = clock

    def _claim_key(self, code: str) -> str:
        return "wx:code:" + hashlib.sha256(f"{self.appid}:{code}".encode()).hexdigest()

    def _caller(self, code: str, idempotency_key: str | None) -> str | None:
        if idempotency_key is None:
            return None
        return hashlib.sha256(f"{self.appid}:{code}:{idempotency_key}".encode()).hexdigest()

    def exchange(
        self, code: str, *, idempotency_key: str | None = None, open_data: OpenData | None = None
    ) -> Flow[Outcome[Any]]:
        """Log in with a wx.login `code`: the user (created the first time) and a new session."""
        key, caller = self._claim_key(code), self._caller(code, idempotency_key)
        pending = json.dumps({"state": "pending", "caller": caller})
        for _ in range(WAITS):
            now = self.clock.now()
            if (yield call("store", "kv_set", key, pending, now=now, ttl=CLAIM_TTL, only_if_absent=True)):
                break
            remembered = yield call("store", "kv_get", key, now=now)
            if remembered is None:
                continue  # the claim just ended: try to take it
            entry = json.loads(remembered)
            if caller is None or not hmac.compare_digest(str(entry.get("caller")), caller):
                raise code_used()  # someone else's exchange: never their outcome
            if entry["state"] != "pending":
                return (yield from self._replay(entry))
            yield Sleep(WAIT_STEP)
        else:
            raise WeChatLoginError(503, "wechat_unavailable", "a login with this code is still in progress")
        try:
            outcome = yield from self._exchange(code, open_data)
        except WeChatLoginError as exc:
            if exc.code not in _TRANSIENT:  # definitive: the same answer for a retry
                failed = {"state": "failed", "caller": caller, "status": exc.status, "code": exc.code,
                          "message": exc.message}  # fmt: skip
                yield call(
                    "store", "kv_set", key, json.dumps(failed), now=self.clock.now(), ttl=CODE_LIFETIME
                )
            else:
                yield call("store", "kv_delete", key, if_value=pending)
            raise
        except BaseException:
            yield call("store", "kv_delete", key, if_value=pending)
            raise
        sealed = self.box.seal(json.dumps({"token": outcome.token, "member": outcome.member.id}))
        done = json.dumps({"state": "done", "caller": caller, "sealed": sealed})
        yield call("store", "kv_set", key, done, now=self.clock.now(), ttl=CODE_LIFETIME)
        return outcome

    def _exchange(self, code: str, open_data: OpenData | None) -> Flow[Outcome[Any]]:
        try:
            result = yield call("wechat", "code2session", code)
        except wx.WeChatError as exc:
            raise error_for(exc) from exc
        profile = open_data.profile(result.session_key, self.appid) if open_data else None
        member = yield call("directory", "find_member", result.openid)
        if member is None:
            member = yield call("directory", "create_member", result.openid)
        if not member.active:
            raise WeChatLoginError(403, "user_disabled", "this account is disabled")
        sealed_key = self.box.seal(result.session_key)
        member = yield call(
            "directory", "save_identity", member, result.openid, result.unionid, sealed_key, profile
        )
        session, token = yield call("directory", "start_session", member)
        return Outcome(member, session, token)

    def _replay(self, entry: dict[str, Any]) -> Flow[Outcome[Any]]:
        if entry["state"] == "failed":
            raise WeChatLoginError(entry["status"], entry["code"], entry["message"])
        inner = json.loads(self.box.unseal(entry["sealed"]))
        resumed = yield call("directory", "resume", inner["token"], inner["member"])
        if resumed is None:  # logged out (or the user disabled) since: not a way back in
            raise code_used()
        member, session = resumed
        return Outcome(member, session, inner["token"])

    def bind(self, member: Member, username: str, password: str) -> Flow[Outcome[Any]]:
        """Tie the WeChat identity of `member` (this session's user) to the password account
        `username`, rotate the session to it, and retire the placeholder user."""
        openid = yield call("directory", "identity_of", member.id)
        if openid is None:
            raise WeChatLoginError(409, "not_a_wechat_session", "log in with WeChat before binding")
        target = yield call("directory", "authenticate", username, password)
        if target.id != member.id:
            if member.bound:
                raise WeChatLoginError(
                    409, "wechat_already_bound", "this WeChat user is already bound to an account"
                )
            if (yield call("directory", "identity_of", target.id)) is not None:
                raise WeChatLoginError(
                    409, "account_already_bound", "that account is bound to another WeChat user"
                )
            yield call("directory", "move_identity", openid, target)
        session, token = yield call("directory", "rotate_session", target)
        if target.id != member.id:
            yield call("directory", "retire", member, bound_to=target)
        return Outcome(target, session, token)

    def phone_number(self, member: Member, code: str) -> Flow[str]:
        """The phone number behind a getPhoneNumber `code`, checked against member's openid."""
        openid = yield call("directory", "identity_of", member.id)
        try:
            info = yield call("wechat", "get_phone_number", code, openid)
        except wx.WeChatError as exc:
            raise error_for(exc) from exc
        return str(info.phone_number)
