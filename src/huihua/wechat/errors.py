"""The errors of the WeChat client and crypto: one root, and the evidence on every error.

    HuihuaError
    └── WeChatError               errcode, errmsg, rid (WeChat's request id, for their support)
        ├── WeChatUnavailable     network failure, timeout, HTTP 5xx, -1 busy, unreadable (503)
        ├── InvalidCode           40029 invalid or expired code, 41008 code missing
        ├── CodeUsed              40163 the code was already exchanged (a retry or a replay)
        ├── UserBlocked           40226 WeChat blocks this (high-risk) user's login
        ├── RateLimited           45011 per-minute quota
        │   └── QuotaExhausted    45009 daily quota: alert someone, it will not pass soon
        ├── InvalidCredentials    40013 appid, 40125 secret, 40002 grant_type, 41002/41004
        │                         missing, 40164 IP not whitelisted: a configuration problem
        ├── InvalidToken          40001 stale, 42001 expired, 40014 invalid, 41001 missing
        ├── InvalidSignature      87009 stale session_key or bad signature, 87008 sig_method
        ├── InvalidOpenid         40003
        └── WeChatDataError       open data failed to decrypt or verify (WXBizDataCrypt codes)
            ├── BadPayload        malformed base64 or lengths: a client bug (-41001/2/4)
            ├── StaleSessionKey   padding, UTF-8 or JSON failed: almost always a rotated key
            ├── WatermarkMismatch   the data was made for another appid
            │   └── WatermarkExpired  older than max_age (a replay)
            └── SignatureMismatch   sha1(rawData + session_key) differs

Messages never contain the appsecret, a session_key or an access token: the client scrubs them from
WeChat's errmsg before raising.
"""

from __future__ import annotations

import re

from ..core.errors import HuihuaError

_RID = re.compile(r"(?:rid|req_id):\s*([\w-]+)")


class WeChatError(HuihuaError):
    code = "wechat_error"
    hint = ""  # what to do next, appended to the message

    def __init__(self, errmsg: str, *, errcode: int | None = None, rid: str | None = None) -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        self.rid = rid if rid is not None else rid_of(errmsg)
        text = errmsg if errcode is None else f"{errmsg} (errcode {errcode})"
        hint = type(self).hint
        super().__init__(f"{text}; {hint}" if hint else text)


class WeChatUnavailable(WeChatError):
    code = "wechat_unavailable"
    hint = "WeChat is busy or unreachable; retry later"


class InvalidCode(WeChatError):
    code = "wechat_code_invalid"
    hint = "get a new code with wx.login (codes live 5 minutes and belong to one appid)"


class CodeUsed(WeChatError):
    code = "wechat_code_used"
    hint = "codes are single-use; get a new one with wx.login"


class UserBlocked(WeChatError):
    code = "wechat_user_blocked"
    hint = "WeChat refuses this user's login"


class RateLimited(WeChatError):
    code = "wechat_rate_limited"
    hint = "slow down and retry in a minute"


class QuotaExhausted(RateLimited):
    code = "wechat_quota_exhausted"
    hint = "the daily quota is used up; cache access tokens instead of fetching them per call"


class InvalidCredentials(WeChatError):
    code = "wechat_misconfigured"
    hint = "check the appid, the appsecret and the server's IP whitelist"


class InvalidToken(WeChatError):
    code = "wechat_token_invalid"
    hint = "the access token is stale; fetch tokens through one shared token manager"


class InvalidSignature(WeChatError):
    code = "wechat_signature_invalid"
    hint = "the session_key is stale or the signature is wrong; log in again"


class InvalidOpenid(WeChatError):
    code = "wechat_openid_invalid"


class WeChatDataError(WeChatError, ValueError):
    code = "wechat_data_invalid"


class BadPayload(WeChatDataError):
    hint = "send encryptedData and iv unchanged, base64, in a JSON body"


class StaleSessionKey(WeChatDataError):
    code = "wechat_session_key_stale"
    hint = "the session_key changed since the data was made; call wx.login before, not during, it"


class WatermarkMismatch(WeChatDataError):
    hint = "the data was not made for this mini program"


class WatermarkExpired(WatermarkMismatch):
    hint = "the data is too old; ask the mini program for fresh data"


class SignatureMismatch(WeChatDataError):
    hint = "rawData was altered, or was signed with another session_key"


ERRCODES: dict[int, type[WeChatError]] = {
    -1: WeChatUnavailable,
    40001: InvalidToken,
    40002: InvalidCredentials,
    40003: InvalidOpenid,
    40013: InvalidCredentials,
    40014: InvalidToken,
    40029: InvalidCode,
    40125: InvalidCredentials,
    40163: CodeUsed,
    40164: InvalidCredentials,
    40226: UserBlocked,
    41001: InvalidToken,
    41002: InvalidCredentials,
    41004: InvalidCredentials,
    41008: InvalidCode,
    42001: InvalidToken,
    45009: QuotaExhausted,
    45011: RateLimited,
    87008: InvalidSignature,
    87009: InvalidSignature,
}

#: The token errors after which one refresh and one retry may help (stale or expired token).
REFRESHABLE = frozenset({40001, 42001})


def rid_of(errmsg: str) -> str | None:
    """WeChat's request id from an errmsg ending in `rid: …` or `hints: [ req_id: … ]`."""
    found = _RID.search(errmsg)
    return found.group(1) if found else None


def error_for(errcode: int, errmsg: str) -> WeChatError:
    """The typed error for a WeChat errcode (WeChatError itself for ones we do not know)."""
    return ERRCODES.get(errcode, WeChatError)(errmsg, errcode=errcode)
