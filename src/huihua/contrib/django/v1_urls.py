"""`path("", include("huihua.contrib.django.v1_urls"))` serves the service's `/v1` API (v1.py):
what the mini-program SDK and the example mini program call, with the service's shapes and codes."""

from __future__ import annotations

from django.urls import path, re_path

from . import v1

app_name = "huihua_v1"

urlpatterns = [
    path("v1/auth/wechat", v1.wechat_login, name="wechat-login"),
    path("v1/auth/wechat/bind", v1.wechat_bind, name="wechat-bind"),
    path("v1/auth/wechat/phone", v1.wechat_phone, name="wechat-phone"),
    path("v1/auth/me", v1.me, name="me"),
    path("v1/auth/logout", v1.logout_view, name="logout"),
    path("v1/sessions", v1.sessions, name="sessions"),
    path("v1/sessions/<str:session_id>", v1.revoke_session, name="revoke-session"),
    path("v1/session/data", v1.session_data, name="session-data"),
    re_path(r"^v1/(?P<rest>.*)$", v1.not_found),  # a JSON 404, as the service answers
]
