"""Django for the tests under tests/django: the tutorial's settings, a private SQLite store, and
Django's own session test suite fetched from the Django sdist (huihua_django_testsuite.py).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from django.conf import settings
from huihua_django_testsuite import ROOT, SUITE_DIR

import django

TUTORIAL = ROOT / "examples" / "django_tutorial"
_tmp = Path(tempfile.mkdtemp(prefix="huihua-django-tests-"))
STORE_URL = f"sqlite:///{_tmp}/huihua.db"

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
