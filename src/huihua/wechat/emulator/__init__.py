"""A faithful, offline stand-in for api.weixin.qq.com, with a control API for tests.

    huihua emulator --port 8601 --app wxAPPID:SECRET      (the lead's CLI calls `run`)
    app = create_app({"wxother": "its-secret"}, clock=FakeClock())   (an ASGI app, in-process)

WeChat's endpoints, with their quirks (docs/wechat.md#the-emulator): `/sns/jscode2session`,
`/cgi-bin/token`, `/cgi-bin/stable_token`, `/wxa/checksession`, `/wxa/resetusersessionkey`,
`/wxa/business/getuserphonenumber`, `/wxa/getpaidunionid`. Errors are HTTP 200 with
`{"errcode": N, "errmsg": "…, rid: …"}`. The registered app is appid `wx1234567890abcdef`, secret
`huihua-emulator-secret`, plus any given in `apps`.

The control API (JSON in, JSON out; 400/404 `{"error"}` for bad calls):

    POST /_emulator/login {openid?, unionid?, appid?, blocked?}  -> {code, openid}
         what wx.login gives that user's phone; a new user when no (or an unknown) openid.
         `blocked: true` marks the user high-risk: their codes then get 40226 (false clears it)
    POST /_emulator/block {openid, blocked?=true}                -> {ok}   the same toggle alone
    POST /_emulator/phone-code {openid, phone?, country_code?}   -> {code} for getuserphonenumber
    POST /_emulator/encrypted-data {openid, data}                -> {encrypted_data, iv, raw_data,
         signature} under the user's current session_key (watermark: the user's appid, now)
    POST /_emulator/session-key/rotate {openid}                  -> {ok}   the old key stops working
    POST /_emulator/session-key/expire {openid}                  -> {ok}   checksession now says 87009
    POST /_emulator/payment {openid, transaction_id?, mch_id?, out_trade_no?}
                                                                 -> {transaction_id, mch_id, out_trade_no}
    POST /_emulator/faults {path, errcode?, latency_ms?, status?, times=1}  -> {ok}
         the next `times` calls to `path` wait latency_ms, then fail with errcode (HTTP 200) or
         with the bare HTTP `status`; faults queue up per path
    GET  /_emulator/calls                                        -> {calls: [{path, params, errcode, at}]}
         every API call, secrets masked (access tokens shortened to 8 characters)
    POST /_emulator/config {legacy_expires_in?, content_type?, rate_limit?}  -> {ok}
    POST /_emulator/reset                                        -> {ok}   forget all but the apps

Behaviour worth knowing: codes live 5 minutes on the injected clock and are single-use (40163);
more than `rate_limit` (100) jscode2session calls per user per minute get 45011; a classic token
fetch retires the previous token after a 5-minute overlap (then 40001; 42001 after 7200 s); the
stable token is the same within its window, rotates 5 minutes early, and force_refresh works 20
times a (Beijing) day, 30 s apart, otherwise it quietly returns the current token; session keys
live `session_key_ttl` (3 days) from last use, a reset keeps the expiry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from starlette.applications import Starlette

from ...core.clock import Clock, SystemClock
from .app import build_app
from .state import DEFAULT_APPID, DEFAULT_SECRET, Emulator, Settings
from .transport import SyncASGITransport

__all__ = [
    "DEFAULT_APPID",
    "DEFAULT_SECRET",
    "Emulator",
    "SyncASGITransport",
    "create_app",
    "parse_apps",
    "run",
]


def create_app(
    apps: Mapping[str, str] | None = None,
    *,
    clock: Clock | None = None,
    legacy_expires_in: bool = False,
    content_type: str = "application/json; charset=utf-8",
    rate_limit: int = 100,
    session_key_ttl: float = 3 * 86400.0,
    unionid: bool = True,
) -> Starlette:
    """The emulator as an ASGI app; its state is `app.state.emulator` (an `Emulator`).

    `legacy_expires_in` adds `expires_in` to jscode2session answers as old accounts get it;
    `content_type` is what answers claim to be (WeChat is seen sending text/plain); `unionid`
    says whether new users get a unionid (an app bound to an Open Platform account).
    """
    registered = {DEFAULT_APPID: DEFAULT_SECRET, **(apps or {})}
    settings = Settings(
        legacy_expires_in=legacy_expires_in,
        content_type=content_type,
        rate_limit=rate_limit,
        session_key_ttl=session_key_ttl,
        unionid=unionid,
    )
    return build_app(Emulator(registered, clock or SystemClock(), settings))


def parse_apps(values: Iterable[str]) -> dict[str, str]:
    """`APPID:SECRET` strings (the CLI's `--app`) as a dict; ValueError names a bad one."""
    apps: dict[str, str] = {}
    for value in values:
        appid, sep, secret = value.partition(":")
        if not sep or not appid.strip() or not secret:
            raise ValueError(f"--app takes APPID:SECRET, not {value.split(':')[0]!r}:…")
        apps[appid.strip()] = secret
    return apps


def run(host: str = "127.0.0.1", port: int = 8601, apps: dict[str, str] | None = None) -> None:
    """Serve the emulator under uvicorn until interrupted, saying where it listens."""
    import uvicorn

    app = create_app(apps)
    base = f"http://{host}:{port}"
    print(f"huihua WeChat emulator listening on {base}")
    print(f"  apps: {', '.join(sorted(app.state.emulator.apps))}")
    print(f"  point clients at api_base={base}; control API at {base}/_emulator/")
    # No access log: its request lines would carry the appsecret and access tokens.
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="info")
