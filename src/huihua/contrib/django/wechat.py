"""WeChat login for Django: code -> code2Session -> the user for that openid.

The WeChat client is built from settings (HUIHUA_WECHAT_APPID, HUIHUA_WECHAT_SECRET,
HUIHUA_WECHAT_API_BASE) and shares its access-token cache through the session store.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from ...wechat.client import DEFAULT_API_BASE, WeChatClient
from .conf import manager
from .models import WeChatIdentity

_clients: dict[tuple[str, str, str], WeChatClient] = {}


def wechat_settings() -> tuple[str, str, str]:
    appid = getattr(settings, "HUIHUA_WECHAT_APPID", "")
    secret = getattr(settings, "HUIHUA_WECHAT_SECRET", "")
    if not appid or not secret:
        raise LookupError("set HUIHUA_WECHAT_APPID and HUIHUA_WECHAT_SECRET to use WeChat login")
    return appid, secret, getattr(settings, "HUIHUA_WECHAT_API_BASE", DEFAULT_API_BASE)


def client() -> WeChatClient:
    key = wechat_settings()
    found = _clients.get(key)
    if found is None:
        appid, secret, api_base = key
        found = WeChatClient(appid, secret, api_base=api_base, token_store=manager().store)
        found = _clients.setdefault(key, found)
    return found


def _username_for(appid: str, openid: str) -> str:
    # Not the openid itself: usernames show up in admin pages and logs.
    return "wx_" + hashlib.sha256(f"{appid}:{openid}".encode()).hexdigest()[:24]


def identity_for(appid: str, openid: str, session_key: str, unionid: str | None) -> WeChatIdentity:
    """The identity for this openid, creating it (and a user without a password) the first time."""
    user_model: Any = get_user_model()
    try:
        with transaction.atomic():
            identity = WeChatIdentity.objects.select_related("user").get(appid=appid, openid=openid)
    except WeChatIdentity.DoesNotExist:
        try:
            with transaction.atomic():
                user = user_model.objects.create_user(username=_username_for(appid, openid))
                identity = WeChatIdentity(user=user, appid=appid, openid=openid)
                identity.set_session_key(session_key)
                identity.unionid = unionid or ""
                identity.save()
                return identity
        except IntegrityError:  # a parallel first login won the race
            identity = WeChatIdentity.objects.select_related("user").get(appid=appid, openid=openid)
    identity.set_session_key(session_key)
    if unionid:
        identity.unionid = unionid
    identity.save(update_fields=["session_key_encrypted", "unionid", "updated_at"])
    return identity
