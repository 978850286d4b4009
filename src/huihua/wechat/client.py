"""WeChatClient and AsyncWeChatClient: thin I/O drivers over the flows of `protocol` and `tokens`.

Everything that decides lives in `_BaseClient` (no I/O); each twin only performs the operations a
flow yields (`_perform`: an HTTP request through httpx, a sleep, or a call to the token store)
under the shared drivers of `core/flow.py`.

(Over 300 lines because each twin spells out the public API of every WeChat call it offers, with
its parameters and docstring, once per twin: one client per module reads as one API.)
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, Self, TypeVar

import anyio
import httpx

from ..config import DEFAULT_WECHAT_API_BASE as DEFAULT_API_BASE
from ..config import Secret
from ..core.clock import Clock, SystemClock
from ..core.flow import adrive, drive
from ..core.store import AsyncStore, Store
from ..stores.inline import InlineAsyncStore
from ..stores.memory import MemoryStore
from . import redact
from .errors import InvalidSignature, WeChatUnavailable
from .protocol import (
    AccessToken,
    ApiResponse,
    Code2SessionResult,
    Flow,
    KvGet,
    KvSet,
    Op,
    PhoneInfo,
    RetryPolicy,
    Send,
    Sleep,
    access_token_request,
    call,
    call_with_token,
    check_session_request,
    code2session_request,
    network_failure,
    paid_unionid_request,
    parse_access_token,
    parse_code2session,
    parse_phone_info,
    phone_number_request,
    reset_session_request,
    stable_token_request,
)
from .tokens import AsyncTokenManager, TokenCache, TokenManager

T = TypeVar("T")


redact.install()  # httpx logs request URLs; ours carry the appsecret, js_code or a token


class _BaseClient:
    def __init__(
        self,
        appid: str,
        secret: str | Secret,
        *,
        api_base: str,
        timeout: float,
        clock: Clock | None,
        retries: int,
        backoff: float,
        stable_token: bool,
    ) -> None:
        self.appid = appid
        self.secret = secret if isinstance(secret, Secret) else Secret(secret)
        self.api_base = api_base.rstrip("/")
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.retry = RetryPolicy(retries=retries, backoff=backoff)
        self.stable_token = stable_token
        self._token_cache = TokenCache(
            appid,
            self._fetch_token,
            clock=self.clock,
            stable=stable_token,
            api_base=self.api_base,
            lock_ttl=timeout * (retries + 1) + 5.0,  # outlives the holder's slowest fetch
            wait=timeout * (retries + 1) + 6.0,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(appid={self.appid!r}, api_base={self.api_base!r})"

    # -- flows: the whole behaviour of both twins ------------------------------------------------
    def _fetch_token(self) -> Flow[AccessToken]:
        if self.stable_token:
            return self._stable_token(force_refresh=False)
        return self._classic_token()

    def _stable_token(self, force_refresh: bool) -> Flow[AccessToken]:
        secret = self.secret.reveal()
        request = stable_token_request(self.appid, secret, force_refresh=force_refresh)
        return parse_access_token((yield from call(request, self.retry)))

    def _classic_token(self) -> Flow[AccessToken]:
        request = access_token_request(self.appid, self.secret.reveal())
        return parse_access_token((yield from call(request, self.retry)))

    def _code2session(self, code: str) -> Flow[Code2SessionResult]:
        request = code2session_request(self.appid, self.secret.reveal(), code)
        return parse_code2session((yield from call(request, self.retry)))

    def _check_session_key(self, openid: str, session_key: str) -> Flow[bool]:
        try:
            yield from call_with_token(
                lambda token: check_session_request(token, openid, session_key),
                self._token_cache,
                self.retry,
            )
        except InvalidSignature as error:
            if error.errcode == 87009:  # the stored key is stale (or never was this user's)
                return False
            raise
        return True

    def _reset_session_key(self, openid: str, session_key: str) -> Flow[str]:
        body = yield from call_with_token(
            lambda token: reset_session_request(token, openid, session_key),
            self._token_cache,
            self.retry,
        )
        key = body.get("session_key")
        if not isinstance(key, str) or not key:
            raise WeChatUnavailable("WeChat's answer has no session_key")
        return key

    def _phone_number(self, code: str, openid: str | None) -> Flow[PhoneInfo]:
        body = yield from call_with_token(
            lambda token: phone_number_request(token, code, openid), self._token_cache, self.retry
        )
        return parse_phone_info(body)

    def _paid_unionid(self, openid: str, **trade: str | None) -> Flow[str]:
        paid_unionid_request("", openid, **trade)  # argument errors before any I/O
        body = yield from call_with_token(
            lambda token: paid_unionid_request(token, openid, **trade),
            self._token_cache,
            self.retry,
        )
        return str(body.get("unionid", ""))

    def _access_token(self) -> Flow[str]:
        return self._token_cache.get()


class WeChatClient(_BaseClient):
    """The WeChat server API for one mini program, over httpx.Client.

    `token_store` is anything with the kv_* methods of huihua's Store (share one across processes
    to share the access token); without one, tokens are cached in this process only.
    """

    def __init__(
        self,
        appid: str,
        secret: str | Secret,
        *,
        api_base: str = DEFAULT_API_BASE,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 5.0,
        token_store: Store | None = None,
        clock: Clock | None = None,
        retries: int = 2,
        backoff: float = 0.1,
        stable_token: bool = True,
    ) -> None:
        super().__init__(
            appid,
            secret,
            api_base=api_base,
            timeout=timeout,
            clock=clock,
            retries=retries,
            backoff=backoff,
            stable_token=stable_token,
        )
        self._store: Store = token_store if token_store is not None else MemoryStore()
        self._http = httpx.Client(base_url=self.api_base, transport=transport, timeout=timeout)
        self.tokens = TokenManager(self._token_cache, self._run)

    def _perform(self, op: Op) -> Any:
        if isinstance(op, Send):
            request = op.request
            try:
                response = self._http.request(
                    request.method, request.path, params=dict(request.params), json=request.json
                )
            except httpx.TransportError as exc:
                return network_failure(exc)
            return ApiResponse(response.status_code, response.content)
        if isinstance(op, Sleep):
            time.sleep(op.seconds)
            return None
        if isinstance(op, KvGet):
            return self._store.kv_get(op.key, now=op.now)
        if isinstance(op, KvSet):
            return self._store.kv_set(
                op.key, op.value, now=op.now, ttl=op.ttl, only_if_absent=op.only_if_absent
            )
        return self._store.kv_delete(op.key, if_value=op.if_value)

    def _run(self, flow: Flow[T]) -> T:
        return drive(flow, self._perform)

    def code2session(self, code: str) -> Code2SessionResult:
        """Exchange a wx.login code for openid, session_key and unionid (once: codes are spent)."""
        return self._run(self._code2session(code))

    def get_stable_access_token(self, force_refresh: bool = False) -> AccessToken:
        """A fresh call to /cgi-bin/stable_token, bypassing the cache (see `access_token`)."""
        return self._run(self._stable_token(force_refresh))

    def get_access_token(self) -> AccessToken:
        """A fresh call to the classic /cgi-bin/token: it invalidates the previous token."""
        return self._run(self._classic_token())

    def access_token(self) -> str:
        """The shared, cached access token, refreshed ahead of expiry by one process at a time."""
        return self._run(self._access_token())

    def check_session_key(self, openid: str, session_key: str) -> bool:
        """Whether WeChat still holds `session_key` as this user's current key."""
        return self._run(self._check_session_key(openid, session_key))

    def reset_session_key(self, openid: str, session_key: str) -> str:
        """Make WeChat issue a new session_key for the user (same expiry); the new key."""
        return self._run(self._reset_session_key(openid, session_key))

    def get_phone_number(self, code: str, openid: str | None = None) -> PhoneInfo:
        """The phone number behind a getPhoneNumber code (not a wx.login code; single-use)."""
        return self._run(self._phone_number(code, openid))

    def get_paid_unionid(
        self,
        openid: str,
        *,
        transaction_id: str | None = None,
        mch_id: str | None = None,
        out_trade_no: str | None = None,
    ) -> str:
        """The unionid of a user who paid within the last 5 minutes."""
        flow = self._paid_unionid(
            openid, transaction_id=transaction_id, mch_id=mch_id, out_trade_no=out_trade_no
        )
        return self._run(flow)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncWeChatClient(_BaseClient):
    """The same API over httpx.AsyncClient; `token_store` is an AsyncStore."""

    def __init__(
        self,
        appid: str,
        secret: str | Secret,
        *,
        api_base: str = DEFAULT_API_BASE,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 5.0,
        token_store: AsyncStore | None = None,
        clock: Clock | None = None,
        retries: int = 2,
        backoff: float = 0.1,
        stable_token: bool = True,
    ) -> None:
        super().__init__(
            appid,
            secret,
            api_base=api_base,
            timeout=timeout,
            clock=clock,
            retries=retries,
            backoff=backoff,
            stable_token=stable_token,
        )
        if token_store is None:
            token_store = InlineAsyncStore(MemoryStore())
        self._store: AsyncStore = token_store
        self._http = httpx.AsyncClient(base_url=self.api_base, transport=transport, timeout=timeout)
        self.tokens = AsyncTokenManager(self._token_cache, self._run)

    async def _perform(self, op: Op) -> Any:
        if isinstance(op, Send):
            request = op.request
            try:
                response = await self._http.request(
                    request.method, request.path, params=dict(request.params), json=request.json
                )
            except httpx.TransportError as exc:
                return network_failure(exc)
            return ApiResponse(response.status_code, response.content)
        if isinstance(op, Sleep):
            await anyio.sleep(op.seconds)
            return None
        if isinstance(op, KvGet):
            return await self._store.kv_get(op.key, now=op.now)
        if isinstance(op, KvSet):
            return await self._store.kv_set(
                op.key, op.value, now=op.now, ttl=op.ttl, only_if_absent=op.only_if_absent
            )
        return await self._store.kv_delete(op.key, if_value=op.if_value)

    async def _run(self, flow: Flow[T]) -> T:
        return await adrive(flow, self._perform)

    async def code2session(self, code: str) -> Code2SessionResult:
        return await self._run(self._code2session(code))

    async def get_stable_access_token(self, force_refresh: bool = False) -> AccessToken:
        return await self._run(self._stable_token(force_refresh))

    async def get_access_token(self) -> AccessToken:
        return await self._run(self._classic_token())

    async def access_token(self) -> str:
        return await self._run(self._access_token())

    async def check_session_key(self, openid: str, session_key: str) -> bool:
        return await self._run(self._check_session_key(openid, session_key))

    async def reset_session_key(self, openid: str, session_key: str) -> str:
        return await self._run(self._reset_session_key(openid, session_key))

    async def get_phone_number(self, code: str, openid: str | None = None) -> PhoneInfo:
        return await self._run(self._phone_number(code, openid))

    async def get_paid_unionid(
        self,
        openid: str,
        *,
        transaction_id: str | None = None,
        mch_id: str | None = None,
        out_trade_no: str | None = None,
    ) -> str:
        flow = self._paid_unionid(
            openid, transaction_id=transaction_id, mch_id=mch_id, out_trade_no=out_trade_no
        )
        return await self._run(flow)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
