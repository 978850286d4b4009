"""`path("api/", include("huihua.contrib.django.urls"))` mounts the JSON views."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "huihua"

urlpatterns = [
    path("wechat/login", views.wechat_login, name="wechat-login"),
    path("wechat/bind", views.wechat_bind, name="wechat-bind"),
    path("auth/logout", views.logout_view, name="logout"),
    path("auth/me", views.me, name="me"),
    path("sessions", views.sessions, name="sessions"),
    path("sessions/<str:session_id>", views.revoke_session, name="revoke-session"),
]
