"""Settings of the tutorial project: Django's defaults plus huihua's three lines (marked)."""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "tutorial-only-not-secret-" + "x" * 32)
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "huihua.contrib.django",  # WeChat identities, JSON auth views, management commands
    "tutorial",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # huihua (1/3): replaces django.contrib.sessions.middleware.SessionMiddleware
    "huihua.contrib.django.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# huihua (2/3): request.session is a huihua session
SESSION_ENGINE = "huihua.contrib.django.session"
# huihua (3/3): where sessions live (redis://127.0.0.1:6379/0 for more than one machine)
HUIHUA_STORE = os.environ.get("HUIHUA_STORE", f"sqlite:///{BASE_DIR / 'huihua.db'}")
# Optional: a failed CSRF check answers JSON clients with huihua's 403 csrf_failed, not an HTML page
CSRF_FAILURE_VIEW = "huihua.contrib.django.csrf.csrf_failure"

# WeChat mini-program login; the defaults talk to `huihua emulator` on this machine.
HUIHUA_WECHAT_APPID = os.environ.get("HUIHUA_WECHAT_APPID", "wx1234567890abcdef")
HUIHUA_WECHAT_SECRET = os.environ.get("HUIHUA_WECHAT_SECRET", "huihua-emulator-secret")
HUIHUA_WECHAT_API_BASE = os.environ.get("HUIHUA_WECHAT_API_BASE", "http://127.0.0.1:8601")

ROOT_URLCONF = "tutorial.urls"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "index"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("TUTORIAL_DB", BASE_DIR / "tutorial.db"),  # *.db is git-ignored
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
WSGI_APPLICATION = "tutorial.wsgi.application"
