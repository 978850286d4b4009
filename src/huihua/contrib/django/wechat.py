"""WeChat login for Django: the use case of `huihua.accounts.wechat_login`, on Django's users,
`WeChatIdentity` rows and `request.session`.

The WeChat client is built from settings (HUIHUA_WECHAT_APPID, HUIHUA_WECHAT_SECRET,
HUIHUA_WECHAT_API_BASE) and shares its access-token cache through the session store; the use
case keeps its claims on codes there too, so every worker sees them.
"""

from __future__ import annotations

import hashlib
import re
from importlib import import_module
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.db import IntegrityError, transaction
from django.http import HttpRequest

from ...accounts.wechat_login import Flow, Member, WeChatDirectory, WeChatLogin, WeChatLoginError, run
from ...wechat.client import WeChatClient
from . import crypto
from .conf import manager, shared
from .middleware import issue_token
from .models import WeChatIdentity
from .passwords import check_password

T = TypeVar("T")

IDENTITY_KEY = "_huihua_wechat_identity"  # the WeChatIdentity pk this session logged in with
BACKEND = "django.contrib.auth.backends.ModelBackend"
NOT_CONFIGURED = (
    "WeChat login is not configured: set HUIHUA_WECHAT_APPID and HUIHUA_WECHAT_SECRET in Django's settings"
)

_clients: dict[tuple[str, str, str], WeChatClient] = {}


def wechat_settings() -> tuple[str, str, str]:
    appid, secret = shared("wechat_appid"), shared("wechat_secret")
    if not appid or not secret:
        raise WeChatLoginError(503, "wechat_not_configured", NOT_CONFIGURED)
    return appid, secret.reveal(), shared("wechat_api_base")


def client() -> WeChatClient:
    key = wechat_settings()
    found = _clients.get(key)
    if found is None:
        appid, secret, api_base = key
        found = WeChatClient(appid, secret, api_base=api_base, token_store=manager().store)
        found = _clients.setdefault(key, found)
    return found


def login_flows() -> WeChatLogin:
    return WeChatLogin(appid=wechat_settings()[0], box=crypto.box(), clock=manager().clock)


def perform(request: HttpRequest, flow: Flow[T]) -> T:
    """Run a flow of the use case for this request (WeChatLoginError for its refusals)."""
    directory: WeChatDirectory[Any] = DjangoDirectory(request, wechat_settings()[0])  # mypy checks it
    return run(flow, wechat=client(), store=manager().store, directory=directory)


def member_of(user: Any) -> Member:
    return Member(str(user.pk), bound=user.has_usable_password(), active=user.is_active, user=user)


def _username_for(appid: str, openid: str) -> str:
    # Not the openid itself: usernames show up in admin pages and logs.
    return "wx_" + hashlib.sha256(f"{appid}:{openid}".encode()).hexdigest()[:24]


def is_placeholder_name(username: str) -> bool:
    """The name `create_member` gives a WeChat-only user (`wx_` and 24 hex digits)."""
    return re.fullmatch(r"wx_[0-9a-f]{24}", username) is not None


class DjangoDirectory:
    """Django's users, identities and session for one request (a WeChatDirectory)."""

    def __init__(self, request: HttpRequest, appid: str) -> None:
        self.request = request
        self.appid = appid
        self.users: Any = get_user_model()

    def _identity(self, openid: str) -> WeChatIdentity | None:
        found: WeChatIdentity | None = (
            WeChatIdentity.objects.select_related("user").filter(appid=self.appid, openid=openid).first()
        )
        return found

    def find_member(self, openid: str) -> Member | None:
        identity = self._identity(openid)
        return member_of(identity.user) if identity else None

    def create_member(self, openid: str) -> Member:
        username = _username_for(self.appid, openid)
        try:
            with transaction.atomic():
                user = self.users.objects.create_user(username=username)  # no usable password
        except IntegrityError:  # a parallel first login made it
            user = self.users.objects.get(username=username)
        return member_of(user)

    def save_identity(
        self,
        member: Member,
        openid: str,
        unionid: str | None,
        sealed_key: str,
        profile: dict[str, Any] | None,
    ) -> Member:
        # The profile is not kept: the model has no field for it (yet).
        try:
            with transaction.atomic():
                identity, _ = WeChatIdentity.objects.select_related("user").get_or_create(
                    appid=self.appid, openid=openid, defaults={"user": member.user}
                )
        except IntegrityError:  # a parallel first login tied it
            identity = WeChatIdentity.objects.select_related("user").get(appid=self.appid, openid=openid)
        identity.session_key_encrypted = sealed_key
        if unionid:
            identity.unionid = unionid
        identity.save(update_fields=["session_key_encrypted", "unionid", "updated_at"])
        self.request.session[IDENTITY_KEY] = identity.pk
        return member_of(identity.user)

    def _issued(self) -> tuple[Any, str]:
        issue_token(self.request)  # saves: a login's rotation happens in the save
        session = self.request.session
        assert session.session_key is not None
        return session, session.session_key

    def start_session(self, member: Member) -> tuple[Any, str]:
        identity = self.request.session.get(IDENTITY_KEY)
        login(self.request, member.user, backend=BACKEND)
        self.request.session[IDENTITY_KEY] = identity
        return self._issued()

    def resume(self, token: str, member_id: str) -> tuple[Member, Any] | None:
        session = import_module(settings.SESSION_ENGINE).SessionStore(token)
        user = self.users.objects.filter(pk=member_id).first()
        if session.get("_auth_user_id") != member_id or user is None or not user.is_active:
            return None
        for name in ("client", "ip", "user_agent"):
            setattr(session, name, getattr(self.request.session, name, None))
        session.modified = True  # the middleware hands the token back, as for a fresh login
        self.request.session = session
        return member_of(user), session

    def identity_of(self, member_id: str) -> str | None:
        found = WeChatIdentity.objects.filter(appid=self.appid, user_id=member_id).values_list(
            "openid", flat=True
        )
        openid: str | None = found.first()
        return openid

    def authenticate(self, username: str, password: str) -> Member:
        return member_of(check_password(self.request, username, password))

    def move_identity(self, openid: str, target: Member) -> None:
        # The phone number stays behind with the placeholder account, as on the service.
        WeChatIdentity.objects.filter(appid=self.appid, openid=openid).update(
            user=target.user, bound=True, phone=""
        )

    def rotate_session(self, target: Member) -> tuple[Any, str]:
        identity = WeChatIdentity.objects.filter(appid=self.appid, user_id=target.id).values_list(
            "pk", flat=True
        )
        if str(self.request.user.pk) == target.id:
            self.request.session.cycle_key()
        else:
            login(self.request, target.user)  # another user: Django flushes, and a new token
        self.request.session[IDENTITY_KEY] = identity.first()
        return self._issued()

    def retire(self, placeholder: Member, *, bound_to: Member) -> None:
        sessions = manager()
        sessions.revoke_user(placeholder.id, reason="bound")
        self.users.objects.filter(pk=placeholder.id).update(is_active=False)  # merged away
        record = getattr(self.request.session, "record", None)
        sessions.emit_account_event("identity_bound", bound_to.id, f"wechat:{self.appid}", record)
