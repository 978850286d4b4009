"""WeChat for huihua: the server API client (sync and async), the access-token manager, open-data
crypto (`huihua.wechat.crypto`) and an offline emulator (`huihua.wechat.emulator`).

    from huihua.wechat import WeChatClient, InvalidCode, CodeUsed
    with WeChatClient(appid, secret, token_store=store) as wechat:
        result = wechat.code2session(code)   # Code2SessionResult(openid, session_key, unionid)
"""

from ..config import Secret
from .client import AsyncWeChatClient, WeChatClient
from .errors import (
    BadPayload,
    CodeUsed,
    InvalidCode,
    InvalidCredentials,
    InvalidOpenid,
    InvalidSignature,
    InvalidToken,
    QuotaExhausted,
    RateLimited,
    SignatureMismatch,
    StaleSessionKey,
    UserBlocked,
    WatermarkExpired,
    WatermarkMismatch,
    WeChatDataError,
    WeChatError,
    WeChatUnavailable,
)
from .protocol import AccessToken, Code2SessionResult, PhoneInfo, RetryPolicy
from .tokens import AsyncTokenManager, TokenCache, TokenManager

__all__ = [
    "AccessToken",
    "AsyncTokenManager",
    "AsyncWeChatClient",
    "BadPayload",
    "Code2SessionResult",
    "CodeUsed",
    "InvalidCode",
    "InvalidCredentials",
    "InvalidOpenid",
    "InvalidSignature",
    "InvalidToken",
    "PhoneInfo",
    "QuotaExhausted",
    "RateLimited",
    "RetryPolicy",
    "Secret",
    "SignatureMismatch",
    "StaleSessionKey",
    "TokenCache",
    "TokenManager",
    "UserBlocked",
    "WatermarkExpired",
    "WatermarkMismatch",
    "WeChatClient",
    "WeChatDataError",
    "WeChatError",
    "WeChatUnavailable",
]
