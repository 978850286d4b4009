"""The classic session tutorial flows, written exactly as for Django's own session engine."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST


@login_required
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "tutorial/index.html")


def set_message(request: HttpRequest) -> HttpResponse:
    request.session["message"] = "Hello! This message was stored in your session."
    return render(request, "tutorial/message.html", {"action": "stored", "message": None})


def read_message(request: HttpRequest) -> HttpResponse:
    message = request.session.get("message")
    return render(request, "tutorial/message.html", {"action": "read", "message": message})


def cookie_counter_page(request: HttpRequest) -> HttpResponse:
    count = _int(request.COOKIES.get("count"))
    return render(request, "tutorial/counter.html",
                  {"kind": "cookie", "count": count, "api": "/api/counter/cookie"})  # fmt: skip


def session_counter_page(request: HttpRequest) -> HttpResponse:
    count = _int(request.session.get("count"))
    return render(request, "tutorial/counter.html",
                  {"kind": "session", "count": count, "api": "/api/counter/session"})  # fmt: skip


@require_http_methods(["GET", "POST"])
def cookie_counter(request: HttpRequest) -> JsonResponse:
    """The count lives in a plain cookie: the client can read and change it."""
    count = _int(request.COOKIES.get("count")) + (request.method == "POST")
    response = JsonResponse({"count": count})
    response.set_cookie("count", str(count), max_age=365 * 86400, samesite="Lax")
    return response


@require_http_methods(["GET", "POST"])
def session_counter(request: HttpRequest) -> JsonResponse:
    """The count lives in the session on the server; the client holds only the session token."""
    if request.method == "POST":
        request.session["count"] = _int(request.session.get("count")) + 1
    return JsonResponse({"count": _int(request.session.get("count"))})


def register(request: HttpRequest) -> HttpResponse:
    form: UserCreationForm[Any] = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()  # the password is hashed by Django's PASSWORD_HASHERS
        login(request, user)  # a new session token: no fixation
        return redirect("index")
    return render(request, "tutorial/register.html", {"form": form})


def login_page(request: HttpRequest) -> HttpResponse:
    form = AuthenticationForm(request, data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        login(request, form.get_user())
        target = request.GET.get("next", "")
        if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
            target = "/"
        return redirect(target)
    return render(request, "tutorial/login.html", {"form": form})


@require_POST
def logout_page(request: HttpRequest) -> HttpResponse:
    logout(request)  # the session is deleted in the store, not just forgotten by the browser
    return redirect("login")


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0
