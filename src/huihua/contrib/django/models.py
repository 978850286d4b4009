"""A WeChat identity (appid + openid) tied to a user of AUTH_USER_MODEL."""

# Field types come from django-stubs' mypy plugin, which needs a Django settings module; a
# library has none, so the plugin is off and the fields go unannotated here.
# mypy: disable-error-code="var-annotated"

from __future__ import annotations

from django.conf import settings
from django.db import models

from . import crypto


class WeChatIdentity(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="wechat_identities"
    )
    appid = models.CharField(max_length=64)
    openid = models.CharField(max_length=128)
    unionid = models.CharField(max_length=128, blank=True, default="", db_index=True)
    # Sealed (crypto.py, AES-GCM); never serialized, printed or sent to a client.
    session_key_encrypted = models.TextField(blank=True, default="", editable=False)
    bound = models.BooleanField(
        default=False, help_text="True once tied to an existing account by username and password."
    )
    phone = models.CharField(
        max_length=32, blank=True, default="", help_text="From /v1/auth/wechat/phone (getPhoneNumber)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [  # noqa: RUF012 - Django's Meta API
            models.UniqueConstraint(fields=["appid", "openid"], name="huihua_wechat_appid_openid")
        ]
        verbose_name = "WeChat identity"
        verbose_name_plural = "WeChat identities"

    def __str__(self) -> str:
        return f"{self.appid}:{self.openid}"

    def __repr__(self) -> str:  # never the session_key
        return f"<WeChatIdentity {self.appid}:{self.openid} user={self.user_id}>"  # type: ignore[attr-defined]

    def set_session_key(self, session_key: str) -> None:
        self.session_key_encrypted = crypto.encrypt(session_key)

    def get_session_key(self) -> str | None:
        """For server-side use only (decrypting encryptedData, checkSessionKey)."""
        if not self.session_key_encrypted:
            return None
        return crypto.decrypt(self.session_key_encrypted)
