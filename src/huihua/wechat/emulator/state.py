"""The emulator's world: apps, users, codes, session keys and tokens, in memory, on an injected clock.

No HTTP here: each API method takes the request's parameters and returns WeChat's answer, or
raises `Failure(errcode, errmsg)`; `app.py` turns both into HTTP 200 bodies. The rules follow
docs/wechat.md (its endpoints, and what the emulator reproduces).

(Over 300 lines because it is one in-memory world: every API method and every control of the
emulator reads and changes the same apps, users, codes and tokens.)
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import secrets
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...core.clock import Clock
from ..crypto import encrypt_data, login_signature, raw_signature

DEFAULT_APPID = "wx1234567890abcdef"
DEFAULT_SECRET = "huihua-emulator-secret"  # noqa: S105 a public, well-known test secret

CODE_TTL = 300.0  # wx.login and phone codes: 5 minutes, single-use
TOKEN_TTL = 7200  # access tokens
OVERLAP = 300.0  # old classic token keeps working this long after a new fetch
STABLE_EARLY = 300.0  # stable tokens rotate this long before they expire
FORCE_PER_DAY = 20
FORCE_INTERVAL = 30.0
PAYMENT_WINDOW = 300.0
DAY_OFFSET = 8 * 3600  # WeChat's days are Beijing days

ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40013: "invalid appid",
    40014: "invalid access_token",
    40029: "invalid code",
    40125: "invalid appsecret",
    40163: "code been used",
    40226: "code blocked",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    41008: "missing code",
    42001: "access_token expired",
    43001: "require GET method",
    43002: "require POST method",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit mustslower retry next minute",
    47001: "data format error",
    87008: "invalid sig_method",
    87009: "invalid signature",
    89002: "open not exists",
    89300: "invalid trade",
}


class Failure(Exception):
    def __init__(self, errcode: int, errmsg: str | None = None) -> None:
        super().__init__(errcode)
        self.errcode = errcode
        self.errmsg = errmsg or ERRMSG.get(errcode, "error")


class ControlError(Exception):
    """A bad control call (HTTP 400, or 404 for an unknown user)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _id(prefix: str, size: int = 27) -> str:
    return prefix + secrets.token_urlsafe(size)[:size]


def new_session_key() -> str:
    return base64.b64encode(os.urandom(16)).decode("ascii")


@dataclass
class User:
    openid: str
    appid: str
    unionid: str | None
    session_key: str
    key_expires_at: float
    blocked: bool = False
    logins: deque[float] = field(default_factory=deque)  # jscode2session calls in the last minute


@dataclass
class Code:
    appid: str
    openid: str
    issued_at: float
    used: bool = False
    phone: tuple[str, str] | None = None  # (pure number, country code) for phone codes


@dataclass
class Token:
    appid: str
    kind: str  # "classic" (/cgi-bin/token) or "stable": the two never affect each other
    issued_at: float
    expires_at: float
    dead_at: float | None = None  # superseded: stops working at this moment (40001 after)


@dataclass
class Payment:
    openid: str
    transaction_id: str
    mch_id: str
    out_trade_no: str
    paid_at: float


@dataclass
class Fault:
    errcode: int | None
    latency_ms: float
    http_status: int | None
    remaining: int


@dataclass
class Settings:
    legacy_expires_in: bool = False
    content_type: str = "application/json; charset=utf-8"
    rate_limit: int = 100  # jscode2session calls per user per minute
    session_key_ttl: float = 3 * 86400.0
    unionid: bool = True  # the app is bound to an Open Platform account


class Emulator:
    """All state of one emulator; every method is thread-safe."""

    def __init__(self, apps: Mapping[str, str], clock: Clock, settings: Settings) -> None:
        self.apps = dict(apps)
        self.default_appid = next(iter(self.apps))
        self.clock = clock
        self._initial = settings
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.settings = Settings(**vars(self._initial))
            self.users: dict[str, User] = {}
            self.codes: dict[str, Code] = {}
            self.phone_codes: dict[str, Code] = {}
            self.tokens: dict[str, Token] = {}
            self.stable: dict[str, str] = {}  # appid -> current stable token
            self.forced: dict[str, list[float]] = {}  # appid -> force_refresh times
            self.payments: list[Payment] = []
            self.faults: dict[str, deque[Fault]] = {}
            self.calls: list[dict[str, Any]] = []

    # -- helpers ---------------------------------------------------------------------------------
    def _app(self, appid: str | None, secret: str | None) -> str:
        if not appid:
            raise Failure(41002)
        if not secret:
            raise Failure(41004)
        if appid not in self.apps:
            raise Failure(40013)
        if not hmac.compare_digest(self.apps[appid].encode(), secret.encode()):
            raise Failure(40125)
        return appid

    def _token_app(self, params: Mapping[str, Any]) -> str:
        value = params.get("access_token")
        if not value:
            raise Failure(41001)
        token = self.tokens.get(str(value))
        now = self.clock.now()
        if token is None or (token.dead_at is not None and now >= token.dead_at):
            raise Failure(40001)
        if now >= token.expires_at:
            raise Failure(42001)
        return token.appid

    def _user(self, openid: Any, appid: str | None = None) -> User:
        user = self.users.get(str(openid)) if openid else None
        if user is None or (appid is not None and user.appid != appid):
            raise Failure(40003)
        return user

    def _issue_token(self, appid: str, kind: str, now: float) -> tuple[str, Token]:
        value = _id("", 136)
        token = Token(appid=appid, kind=kind, issued_at=now, expires_at=now + TOKEN_TTL)
        self.tokens[value] = token
        return value, token

    def _control_user(self, openid: Any) -> User:
        if not isinstance(openid, str) or openid not in self.users:
            raise ControlError(f"no user with openid {openid!r}; POST /_emulator/login first", 404)
        return self.users[openid]

    # -- WeChat's API ----------------------------------------------------------------------------
    @staticmethod
    def _code_params(method: str, params: Mapping[str, str]) -> tuple[str, str, str]:
        if method != "GET":
            raise Failure(41002)  # parameters in a POST body are not read: "appid missing"
        appid, secret, code = (params.get(k) for k in ("appid", "secret", "js_code"))
        if not appid:
            raise Failure(41002)
        if not secret:
            raise Failure(41004)
        if not code:
            raise Failure(41008)
        if params.get("grant_type", "authorization_code") != "authorization_code":
            raise Failure(40002)
        return appid, secret, code

    def jscode2session(self, method: str, params: Mapping[str, str], body: Any) -> dict[str, Any]:
        appid, secret, code = self._code_params(method, params)
        with self._lock:
            self._app(appid, secret)
            now = self.clock.now()
            record = self.codes.get(code)
            if record is None or record.appid != appid or now - record.issued_at > CODE_TTL:
                raise Failure(40029)
            user = self.users[record.openid]
            if user.blocked:
                raise Failure(40226)
            if record.used:
                raise Failure(40163)
            while user.logins and user.logins[0] <= now - 60:
                user.logins.popleft()
            if len(user.logins) >= self.settings.rate_limit:
                raise Failure(45011)
            user.logins.append(now)
            record.used = True
            if now >= user.key_expires_at:
                user.session_key = new_session_key()
            user.key_expires_at = now + self.settings.session_key_ttl  # use extends the key
            answer: dict[str, Any] = {"session_key": user.session_key, "openid": user.openid}
            if user.unionid:
                answer["unionid"] = user.unionid
            if self.settings.legacy_expires_in:
                answer["expires_in"] = 7200
            return answer

    def token(self, method: str, params: Mapping[str, str], body: Any) -> dict[str, Any]:
        if method != "GET":
            raise Failure(43001)
        with self._lock:
            if params.get("grant_type") != "client_credential":
                raise Failure(40002)
            appid = self._app(params.get("appid"), params.get("secret"))
            now = self.clock.now()
            for old in self.tokens.values():  # a fetch retires the previous classic token
                if old.appid == appid and old.kind == "classic" and old.dead_at is None:
                    old.dead_at = now + OVERLAP
            value, _ = self._issue_token(appid, "classic", now)
            return {"access_token": value, "expires_in": TOKEN_TTL}

    def stable_token(self, method: str, params: Mapping[str, str], body: Any) -> dict[str, Any]:
        if method != "POST":
            raise Failure(43002)
        if not isinstance(body, dict):
            raise Failure(47001)
        with self._lock:
            if body.get("grant_type") != "client_credential":
                raise Failure(40002)
            appid = self._app(body.get("appid"), body.get("secret"))
            now = self.clock.now()
            current = self.tokens.get(self.stable.get(appid, ""))
            if current is not None and (current.dead_at is not None or now >= current.expires_at):
                current = None
            if body.get("force_refresh") is True and current is not None:
                day = (now + DAY_OFFSET) // 86400
                forced = [t for t in self.forced.get(appid, []) if (t + DAY_OFFSET) // 86400 == day]
                self.forced[appid] = forced
                # Over 20 a day or within 30 s of the last: "no refresh happens" (docs/wechat.md#endpoints).
                if len(forced) < FORCE_PER_DAY and (not forced or now - forced[-1] >= FORCE_INTERVAL):
                    forced.append(now)
                    current.dead_at = now  # force_refresh invalidates the old token at once
                    current = None
            if current is None or current.expires_at - now < STABLE_EARLY:
                value, current = self._issue_token(appid, "stable", now)  # the old one runs out its time
                self.stable[appid] = value
            return {"access_token": self.stable[appid], "expires_in": int(current.expires_at - now)}

    def _signed_user(self, params: Mapping[str, str]) -> User:
        appid = self._token_app(params)
        user = self._user(params.get("openid"), appid)
        if params.get("sig_method") != "hmac_sha256":
            raise Failure(87008)
        expected = login_signature(user.session_key)
        given = str(params.get("signature", "")).encode()
        if self.clock.now() >= user.key_expires_at or not hmac.compare_digest(expected.encode(), given):
            raise Failure(87009)
        return user

    def checksession(self, method: str, params: Mapping[str, str], body: Any) -> dict[str, Any]:
        if method != "GET":
            raise Failure(43001)
        with self._lock:
            self._signed_user(params)
            return {"errcode": 0, "errmsg": "ok"}

    def resetusersessionkey(self, method: str, params: Mapping[str, str], body: Any) -> dict[str, Any]:
        if method != "GET":
            raise Failure(43001)
        with self._lock:
            user = self._signed_user(params)
            user.session_key = new_session_key()  # the expiry is inherited, not extended
            return {
                "errcode": 0,
                "errmsg": "ok",
                "openid": user.openid,
                "session_key": user.session_key,
            }

    def getuserphonenumber(self, method: str, params: Mapping[str, str], body: Any) -> dict[str, Any]:
        if method != "POST":
            raise Failure(43002)
        with self._lock:
            appid = self._token_app(params)
            if not isinstance(body, dict):
                raise Failure(47001)
            code = body.get("code")
            if not code:
                raise Failure(41008)
            now = self.clock.now()
            record = self.phone_codes.get(str(code))
            if (
                record is None
                or record.used
                or record.appid != appid
                or now - record.issued_at > CODE_TTL
                or record.phone is None
            ):
                raise Failure(40029)
            if body.get("openid") not in (None, record.openid):
                raise Failure(40029, "invalid code, code does not belong to openid")
            record.used = True
            pure, country = record.phone
            return {
                "errcode": 0,
                "errmsg": "ok",
                "phone_info": {
                    "phoneNumber": pure if country == "86" else f"+{country}{pure}",
                    "purePhoneNumber": pure,
                    "countryCode": int(country) if country.isdigit() else country,
                    "watermark": {"timestamp": int(now), "appid": appid},
                },
            }

    def getpaidunionid(self, method: str, params: Mapping[str, str], body: Any) -> dict[str, Any]:
        if method != "GET":
            raise Failure(43001)
        with self._lock:
            appid = self._token_app(params)
            user = self._user(params.get("openid"), appid)
            now = self.clock.now()
            tid, mch, trade = (params.get(k) for k in ("transaction_id", "mch_id", "out_trade_no"))
            for payment in self.payments:
                matches = (tid and payment.transaction_id == tid) or (
                    not tid and mch and trade and (payment.mch_id, payment.out_trade_no) == (mch, trade)
                )
                if matches and payment.openid == user.openid and now - payment.paid_at <= PAYMENT_WINDOW:
                    break
            else:
                raise Failure(89300)
            if not user.unionid:
                raise Failure(89002)
            return {"unionid": user.unionid, "errcode": 0, "errmsg": "ok"}

    # -- the control API: the phone's and the test's part ----------------------------------------
    def login(
        self,
        openid: str | None = None,
        unionid: str | None = None,
        appid: str | None = None,
        blocked: bool | None = None,
    ) -> dict[str, str]:
        with self._lock:
            appid = appid or self.default_appid
            if appid not in self.apps:
                raise ControlError(f"appid {appid!r} is not registered with the emulator")
            now = self.clock.now()
            user = self.users.get(openid) if openid else None
            if user is not None and user.appid != appid:
                raise ControlError(f"openid {openid!r} belongs to {user.appid}, not {appid}")
            if user is None:
                if self.settings.unionid and unionid is None:
                    unionid = _id("o", 27)
                user = User(
                    openid=openid or _id("o", 27),
                    appid=appid,
                    unionid=unionid,
                    session_key=new_session_key(),
                    key_expires_at=now + self.settings.session_key_ttl,
                )
                self.users[user.openid] = user
            elif unionid is not None:
                user.unionid = unionid
            if blocked is not None:
                user.blocked = blocked
            code = secrets.token_hex(16)
            self.codes[code] = Code(appid=appid, openid=user.openid, issued_at=now)
            return {"code": code, "openid": user.openid}

    def phone_code(self, openid: Any, phone: str | None, country_code: str = "86") -> str:
        with self._lock:
            user = self._control_user(openid)
            if phone is None:
                digits = int.from_bytes(user.openid.encode()[-6:], "big") % 10**8
                phone = f"138{digits:08d}"
            pure = phone.removeprefix("+" + country_code) if phone.startswith("+") else phone
            code = secrets.token_hex(32)
            self.phone_codes[code] = Code(
                appid=user.appid,
                openid=user.openid,
                issued_at=self.clock.now(),
                phone=(pure, country_code),
            )
            return code

    def encrypted_data(self, openid: Any, data: Mapping[str, Any]) -> dict[str, str]:
        with self._lock:
            user = self._control_user(openid)
            raw = json.dumps(dict(data), ensure_ascii=False, separators=(",", ":"))
            encrypted, iv = encrypt_data(
                user.session_key, data, appid=user.appid, timestamp=int(self.clock.now())
            )
            return {
                "encrypted_data": encrypted,
                "iv": iv,
                "raw_data": raw,
                "signature": raw_signature(raw, user.session_key),
            }

    def rotate_session_key(self, openid: Any) -> None:
        with self._lock:
            user = self._control_user(openid)
            user.session_key = new_session_key()
            user.key_expires_at = self.clock.now() + self.settings.session_key_ttl

    def expire_session_key(self, openid: Any) -> None:
        with self._lock:
            self._control_user(openid).key_expires_at = self.clock.now()

    def block(self, openid: Any, blocked: bool) -> None:
        with self._lock:
            self._control_user(openid).blocked = blocked

    def pay(
        self,
        openid: Any,
        transaction_id: str | None = None,
        mch_id: str | None = None,
        out_trade_no: str | None = None,
    ) -> dict[str, str]:
        with self._lock:
            user = self._control_user(openid)
            payment = Payment(
                openid=user.openid,
                transaction_id=transaction_id or secrets.token_hex(14),
                mch_id=mch_id or "1230000109",
                out_trade_no=out_trade_no or secrets.token_hex(8),
                paid_at=self.clock.now(),
            )
            self.payments.append(payment)
            return {
                "transaction_id": payment.transaction_id,
                "mch_id": payment.mch_id,
                "out_trade_no": payment.out_trade_no,
            }

    def add_fault(
        self,
        path: str,
        *,
        errcode: int | None,
        latency_ms: float,
        http_status: int | None,
        times: int,
    ) -> None:
        with self._lock:
            queue = self.faults.setdefault("/" + path.lstrip("/"), deque())
            queue.append(Fault(errcode, latency_ms, http_status, times))

    def take_fault(self, path: str) -> Fault | None:
        with self._lock:
            queue = self.faults.get(path)
            if not queue:
                return None
            fault = queue[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.popleft()
            return fault

    def record(self, path: str, params: Mapping[str, Any], errcode: int) -> None:
        shown: dict[str, Any] = {}
        for name, value in params.items():
            if name == "secret":
                shown[name] = "***"
            elif name == "access_token" and isinstance(value, str):
                shown[name] = value[:8] + "***"  # enough to tell tokens apart, not to use one
            else:
                shown[name] = value
        with self._lock:
            self.calls.append({"path": path, "params": shown, "errcode": errcode, "at": self.clock.now()})
