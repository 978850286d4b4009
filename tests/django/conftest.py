"""Django for the tests under tests/django: the tutorial's settings, a private SQLite store, and
Django's own session test suite fetched from the Django sdist (huihua_django_testsuite.py).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from huihua_django_testsuite import ROOT, SUITE_DIR

import django

TUTORIAL = ROOT / "examples" / "django_tutorial"
_tmp = Path(tempfile.mkdtemp(prefix="huihua-django-tests-"))
STORE_URL = f"sqlite:///{_tmp}/huihua.db"
EMULATOR_BASE = "http://wechat.test"

sys.path.insert(0, str(TUTORIAL))
if SUITE_DIR is not None:
    sys.path.insert(0, str(SUITE_DIR))

if not settings.configured:
    from tutorial import settings as tutorial_settings

    values = {k: v for k, v in vars(tutorial_settings).items() if k.isupper()}
    values.update(
        DEBUG=False,
        HUIHUA_STORE=STORE_URL,
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        # django.contrib.sessions: the django_session table the import command reads.
        INSTALLED_APPS=[
            *values["INSTALLED_APPS"],
            "django.contrib.sessions",
            *(["sessions_tests"] if SUITE_DIR is not None else []),
        ],
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],  # fast tests only
    )
    settings.configure(**values)
    django.setup()


def pytest_sessionfinish() -> None:
    shutil.rmtree(_tmp, ignore_errors=True)


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def store_url(settings: object, tmp_path: Path) -> str:
    """A fresh SQLite store for one test, made the HUIHUA_STORE."""
    url = f"sqlite:///{tmp_path}/huihua.db"
    settings.HUIHUA_STORE = url  # type: ignore[attr-defined]
    return url


@pytest.fixture
def manager(store_url: str) -> object:
    from huihua.contrib.django.conf import manager

    return manager()


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch, settings: Any) -> Iterator[httpx.Client]:
    """The in-process WeChat emulator, with Django's WeChat client pointed at it."""
    from huihua.contrib.django import wechat
    from huihua.wechat.client import WeChatClient
    from huihua.wechat.emulator import DEFAULT_APPID, DEFAULT_SECRET, SyncASGITransport, create_app

    app = create_app()
    transport = SyncASGITransport(app)
    settings.HUIHUA_WECHAT_APPID, settings.HUIHUA_WECHAT_SECRET = DEFAULT_APPID, DEFAULT_SECRET
    client = WeChatClient(DEFAULT_APPID, DEFAULT_SECRET, api_base=EMULATOR_BASE, transport=transport)
    monkeypatch.setattr(wechat, "client", lambda: client)
    with httpx.Client(base_url=EMULATOR_BASE, transport=transport) as control:
        yield control
    client.close()
    transport.close()
