"""WeChat login for the service: code -> code2Session -> user -> huihua session, exactly once.

Idempotent exchange: a code that reached us is sent to WeChat once. The first request claims it
in the store's key-value space (shared by every worker); the outcome is kept there for the
code's 5-minute life, the session token sealed with the secret key, so a client that retries
with the same code gets the same session instead of WeChat's 40163. A concurrent duplicate waits
for the first to finish. Transient failures (WeChat busy or down) release the claim so a retry
may try again; definitive ones (invalid, used, blocked) are remembered and answered again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ..accounts.sealing import SecretBox
from ..accounts.service import Accounts
from ..accounts.users import User
from ..accounts.wechat_identities import WeChatIdentities, WeChatIdentity
from ..config import Settings
from ..core.async_manager import AsyncSessionManager
from ..core.errors import SessionInvalid
from ..core.session import Session
from ..wechat import AsyncWeChatClient
from ..wechat import errors as wx
from ..wechat.crypto import decrypt_data, verify_raw_signature
from .errors import ApiError

CODE_LIFETIME = 300.0
CLAIM_TTL = 30.0
_PENDING = "pending"


def api_error_for(exc: wx.WeChatError) -> ApiError:
    """What a client sees of a WeChat failure: a clear code, never WeChat's secrets."""
    if isinstance(exc, wx.CodeUsed):
        return ApiError(400, "wechat_code_used", "this login code was already used; call wx.login again")
    if isinstance(exc, wx.InvalidCode):
        return ApiError(
            400, "wechat_code_invalid", "this login code is invalid or expired; call wx.login again"
        )
    if isinstance(exc, wx.UserBlocked):
        return ApiError(403, "wechat_user_blocked", "WeChat blocks login for this user")
    if isinstance(exc, wx.RateLimited):
        return ApiError(
            429,
            "wechat_rate_limited",
            "WeChat's rate limit was reached; retry in a minute",
            {"Retry-After": "60"},
        )
    if isinstance(exc, wx.WeChatDataError):
        return ApiError(400, "wechat_data_invalid", f"the encrypted user data could not be used: {exc.code}")
    return ApiError(503, "wechat_unavailable", "WeChat is unavailable; retry shortly", {"Retry-After": "1"})


_REMEMBERED = (wx.InvalidCode, wx.CodeUsed, wx.UserBlocked)


@dataclass
class WeChatOutcome:
    user: User
    session: Session
    bound: bool


class WeChatLogin:
    def __init__(
        self,
        client: AsyncWeChatClient,
        *,
        appid: str,
        manager: AsyncSessionManager,
        accounts: Accounts,
        box: SecretBox,
    ) -> None:
        self.client = client
        self.appid = appid
        self.manager = manager
        self.accounts = accounts
        self.identities = WeChatIdentities(accounts.db)
        self.box = box

    @classmethod
    def from_settings(
        cls, settings: Settings, *, manager: AsyncSessionManager, accounts: Accounts, transport: Any = None
    ) -> WeChatLogin:
        assert settings.wechat_appid
        assert settings.wechat_secret
        client = AsyncWeChatClient(
            settings.wechat_appid,
            settings.wechat_secret,
            api_base=settings.wechat_api_base,
            transport=transport,
            token_store=manager.store,
            clock=manager.clock,
        )
        box = SecretBox(settings.secret_key, "wechat-session-key")
        return cls(client, appid=settings.wechat_appid, manager=manager, accounts=accounts, box=box)

    async def aclose(self) -> None:
        await self.client.aclose()

    # -- the exchange --------------------------------------------------------------------------
    def _claim_key(self, code: str) -> str:
        return "wx:code:" + hashlib.sha256(f"{self.appid}:{code}".encode()).hexdigest()

    async def exchange(
        self,
        code: str,
        *,
        current: Session | None,
        ip: str | None,
        user_agent: str | None,
        open_data: dict[str, str] | None,
    ) -> WeChatOutcome:
        store, key = self.manager.store, self._claim_key(code)
        for _ in range(100):  # a concurrent duplicate waits up to ~5 s for the first
            now = self.manager.clock.now()
            if await store.kv_set(key, _PENDING, now=now, ttl=CLAIM_TTL, only_if_absent=True):
                break
            remembered = await store.kv_get(key, now=now)
            if remembered is not None and remembered != _PENDING:
                return await self._replay(remembered)
            await asyncio.sleep(0.05)
        else:
            raise ApiError(503, "wechat_unavailable", "a login with this code is still in progress")
        try:
            result = await self.client.code2session(code)
        except wx.WeChatError as exc:
            if isinstance(exc, _REMEMBERED):
                await store.kv_set(
                    key,
                    json.dumps({"error": type(exc).__name__}),
                    now=self.manager.clock.now(),
                    ttl=CODE_LIFETIME,
                )
            else:
                await store.kv_delete(key, if_value=_PENDING)
            raise api_error_for(exc) from exc
        try:
            outcome = await self._sign_in(
                result.openid,
                result.unionid,
                result.session_key,
                current=current,
                ip=ip,
                user_agent=user_agent,
            )
        except BaseException:
            await store.kv_delete(key, if_value=_PENDING)
            raise
        assert outcome.session.token is not None
        sealed = self.box.seal(json.dumps({"token": outcome.session.token, "openid": result.openid}))
        await store.kv_set(
            key, json.dumps({"sealed": sealed}), now=self.manager.clock.now(), ttl=CODE_LIFETIME
        )
        if open_data:
            await self._apply_open_data(result.openid, result.session_key, open_data)
        return outcome

    async def _replay(self, remembered: str) -> WeChatOutcome:
        entry = json.loads(remembered)
        if "error" in entry:
            raise api_error_for(getattr(wx, entry["error"])("remembered outcome of this code"))
        inner = json.loads(self.box.unseal(entry["sealed"]))
        try:
            session = await self.manager.load(inner["token"])
        except SessionInvalid as exc:
            raise ApiError(
                400, "wechat_code_used", "this login code was already used; call wx.login again"
            ) from exc
        session.token = inner["token"]
        user = await self.accounts.get(session.user_id or "")
        if user is None:
            raise ApiError(400, "wechat_code_used", "this login code was already used; call wx.login again")
        return WeChatOutcome(user, session, bound=user.username is not None)

    async def _sign_in(
        self,
        openid: str,
        unionid: str | None,
        session_key: str,
        *,
        current: Session | None,
        ip: str | None,
        user_agent: str | None,
    ) -> WeChatOutcome:
        db = self.accounts._db
        identity = await db(self.identities.find, self.appid, openid)
        user = await self.accounts.get(identity.user_id) if identity else None
        if user is None:
            user = await self.accounts.create_wechat_user()
        if user.disabled:
            raise ApiError(403, "user_disabled", "this account is disabled")
        sealed_key = self.box.seal(session_key)
        await db(
            self.identities.upsert,
            WeChatIdentity(self.appid, openid, unionid, user.id, sealed_key),
            self.manager.clock.now(),
        )
        session = await self.manager.login(
            current, user.id, client="miniprogram", ip=ip, user_agent=user_agent
        )
        return WeChatOutcome(user, session, bound=user.username is not None)

    async def _apply_open_data(self, openid: str, session_key: str, open_data: dict[str, str]) -> None:
        """Check and decrypt wx.getUserInfo's payload, and keep the profile it carries."""
        try:
            if open_data.get("raw_data") is not None and open_data.get("signature") is not None:
                verify_raw_signature(open_data["raw_data"], session_key, open_data["signature"])
            profile: dict[str, Any] = {}
            if open_data.get("encrypted_data") and open_data.get("iv"):
                profile = decrypt_data(
                    session_key, open_data["encrypted_data"], open_data["iv"], appid=self.appid
                )
            elif open_data.get("raw_data"):
                profile = json.loads(open_data["raw_data"])
        except (wx.WeChatDataError, ValueError) as exc:
            raise api_error_for(exc if isinstance(exc, wx.WeChatError) else wx.BadPayload(str(exc))) from exc
        profile.pop("watermark", None)
        await self.accounts._db(
            self.identities.set_profile,
            self.appid,
            openid,
            json.dumps(profile, ensure_ascii=False),
            self.manager.clock.now(),
        )

    # -- binding and phone ---------------------------------------------------------------------
    async def identity_of(self, user_id: str) -> WeChatIdentity | None:
        return await self.accounts._db(self.identities.of_user, self.appid, user_id)

    async def bind(self, session: Session, wechat_user: User, target: User) -> Session:
        """Tie this session's WeChat identity to the password account `target`; rotate."""
        identity = await self.identity_of(wechat_user.id)
        if identity is None:
            raise ApiError(409, "not_a_wechat_session", "log in with WeChat before binding")
        if wechat_user.id == target.id:
            return await self.manager.rotate(session)
        if wechat_user.username is not None:
            raise ApiError(409, "wechat_already_bound", "this WeChat user is already bound to an account")
        if await self.identity_of(target.id) is not None:
            raise ApiError(409, "account_already_bound", "that account is bound to another WeChat user")
        db, now = self.accounts._db, self.manager.clock.now()
        await db(self.identities.move, self.appid, identity.openid, target.id, now)
        rotated = await self.manager.rotate(session, user_id=target.id, keep_data=True)
        await self.manager.revoke_user(wechat_user.id, reason="bound")
        await self.accounts.set_disabled(wechat_user.id, True)  # the placeholder user is merged away
        return rotated

    async def phone_number(self, code: str, user_id: str) -> str:
        identity = await self.identity_of(user_id)
        try:
            info = await self.client.get_phone_number(code, identity.openid if identity else None)
        except wx.WeChatError as exc:
            raise api_error_for(exc) from exc
        return info.phone_number
