"""Settings of the Django peer. Kept to what a user following Django's docs would write.

Differences from `startproject` defaults, and why:
- SQLite in WAL mode with synchronous=NORMAL (Django >= 5.1 `init_command`): the same durability
  huihua's SQLite store runs with, so neither side pays for an fsync the other skips.
- no CSRF middleware: the JSON endpoints are called by a load generator (huihua's header
  transport needs no CSRF token either); no admin, no templates, no static files.
- the password hasher is Django's default (PBKDF2-SHA256, Django's iteration count), as shipped.
"""

import os

BASE_DIR = os.path.dirname(os.path.abspath(__file__))
SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "django_peer.urls"
WSGI_APPLICATION = "django_peer.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_DJANGO_DB", os.path.join(BASE_DIR, "bench.sqlite3")),
        "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"},
    }
}

_sessions = os.environ.get("BENCH_DJANGO_SESSIONS", "db")
if _sessions == "cache":
    SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    SESSION_CACHE_ALIAS = "default"
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9"),
            "KEY_PREFIX": "djbench",
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
        }
    }
elif _sessions == "db":
    SESSION_ENGINE = "django.contrib.sessions.backends.db"
else:
    raise RuntimeError(f"BENCH_DJANGO_SESSIONS must be db or cache, not {_sessions!r}")

LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
