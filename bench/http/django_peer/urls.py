from django.urls import path

from . import views

urlpatterns = [
    path("v1/auth/me", views.me),
    path("v1/auth/login", views.login_view),
    path("v1/session/data", views.session_data),
]
