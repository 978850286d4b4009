"""The service's side of the WeChat login use case (`huihua.accounts.wechat_login`): its users,
identities and sessions, for one request. The decisions live in the use case; this file only says
how the service finds a user or starts a session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..accounts.sealing import SecretBox
from ..accounts.service import Accounts
from ..accounts.users import User
from ..accounts.wechat_identities import WeChatIdentity
from ..accounts.wechat_login import AsyncWeChatDirectory, Flow, Member, WeChatLogin, arun
from ..config import Settings
from ..core.async_manager import AsyncSessionManager
from ..core.errors import SessionInvalid, WrongPassword
from ..core.session import Session
from ..wechat import AsyncWeChatClient
from .context import SessionContext
from .services import Services


def member_of(user: User) -> Member:
    return Member(user.id, bound=user.username is not None, active=not user.disabled, user=user)


class ServiceWeChat:
    """WeChat for the service: the client, the use case, and a directory per request."""

    def __init__(
        self, make_client: Callable[[], AsyncWeChatClient], login: WeChatLogin, accounts: Accounts
    ) -> None:
        self._make_client = make_client
        self.client = make_client()
        self.login = login
        self.appid = login.appid

    @classmethod
    def from_settings(
        cls, settings: Settings, *, manager: AsyncSessionManager, accounts: Accounts, transport: Any = None
    ) -> ServiceWeChat:
        assert settings.wechat_appid
        assert settings.wechat_secret
        appid, secret = settings.wechat_appid, settings.wechat_secret

        def make_client() -> AsyncWeChatClient:
            return AsyncWeChatClient(
                appid,
                secret,
                api_base=settings.wechat_api_base,
                transport=transport,
                token_store=manager.store,
                clock=manager.clock,
            )

        box = SecretBox(settings.secret_key, "wechat-session-key")
        return cls(make_client, WeChatLogin(appid=appid, box=box, clock=manager.clock), accounts)

    async def run(self, flow: Flow[Any], svc: Services, ctx: SessionContext) -> Any:
        directory: AsyncWeChatDirectory[Session] = ServiceDirectory(self, svc, ctx)  # mypy checks it
        return await arun(flow, wechat=self.client, store=svc.manager.store, directory=directory)

    async def aclose(self) -> None:
        """At the end of the app's lifespan; a new client is ready if the app starts again."""
        await self.client.aclose()
        self.client = self._make_client()


class ServiceDirectory:
    """huihua's own accounts and sessions, for one request (an AsyncWeChatDirectory)."""

    def __init__(self, wechat: ServiceWeChat, svc: Services, ctx: SessionContext) -> None:
        self.appid = wechat.appid
        self.svc = svc
        self.accounts = svc.accounts
        self.ctx = ctx
        self.rotated: Session | None = None

    async def _member(self, user_id: str) -> Member | None:
        user = await self.svc.accounts.get(user_id)
        return member_of(user) if user is not None else None

    async def find_member(self, openid: str) -> Member | None:
        user = await self.accounts.wechat_user(self.appid, openid)
        return member_of(user) if user is not None else None

    async def create_member(self, openid: str) -> Member:
        return member_of(await self.svc.accounts.create_wechat_user())

    async def save_identity(
        self,
        member: Member,
        openid: str,
        unionid: str | None,
        sealed_key: str,
        profile: dict[str, Any] | None,
    ) -> Member:
        identity = WeChatIdentity(self.appid, openid, unionid, member.id, sealed_key)
        owner = await self.accounts.link_wechat(identity, profile)  # a parallel login may have won
        return member_of(owner) if owner is not None else member

    async def start_session(self, member: Member) -> tuple[Session, str]:
        session = await self.ctx.log_in(member.id, client="miniprogram")
        assert session.token is not None
        return session, session.token

    async def resume(self, token: str, member_id: str) -> tuple[Member, Session] | None:
        try:
            session = await self.svc.manager.load(token)
        except SessionInvalid:
            return None
        member = await self._member(member_id)
        if session.user_id != member_id or member is None or not member.active:
            return None
        session.token = token
        self.ctx.issue(session)  # the same outcome again: its token goes back to the client
        return member, session

    async def identity_of(self, member_id: str) -> str | None:
        return await self.accounts.wechat_openid_of(self.appid, member_id)

    async def authenticate(self, username: str, password: str) -> Member:
        refusal = WrongPassword(status=403)  # the session is fine: the password given is not
        user = await self.svc.passwords.check_password(username, password, ip=self.ctx.ip, refusal=refusal)
        return member_of(user)

    async def move_identity(self, openid: str, target: Member) -> None:
        await self.accounts.move_wechat_identity(self.appid, openid, target.id)

    async def rotate_session(self, target: Member) -> tuple[Session, str]:
        rotated = await self.ctx.rotate(await self.ctx.require(), user_id=target.id)
        assert rotated.token is not None
        self.rotated = rotated
        return rotated, rotated.token

    async def retire(self, placeholder: Member, *, bound_to: Member) -> None:
        manager = self.svc.manager
        await manager.revoke_user(placeholder.id, reason="bound")
        await self.svc.accounts.set_disabled(placeholder.id, True)  # merged away
        assert self.rotated is not None
        manager.emit_account_event("identity_bound", bound_to.id, f"wechat:{self.appid}", self.rotated.record)
