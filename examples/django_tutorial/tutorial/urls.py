from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.index, name="index"),
    path("message/set/", views.set_message, name="set-message"),
    path("message/", views.read_message, name="read-message"),
    path("counter/cookie/", views.cookie_counter_page, name="cookie-counter"),
    path("counter/session/", views.session_counter_page, name="session-counter"),
    path("api/counter/cookie", views.cookie_counter, name="api-cookie-counter"),
    path("api/counter/session", views.session_counter, name="api-session-counter"),
    path("register/", views.register, name="register"),
    path("login/", views.login_page, name="login"),
    path("logout/", views.logout_page, name="logout"),
    # Mini-program API: POST /api/wechat/login {code}, /api/wechat/bind, /api/auth/me, ...
    path("api/", include("huihua.contrib.django.urls")),
    # The service's /v1 API (what the mini-program SDK calls): /v1/auth/wechat, /v1/auth/me, ...
    path("", include("huihua.contrib.django.v1_urls")),
]
