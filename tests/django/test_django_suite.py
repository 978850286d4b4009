"""Django's own session backend tests (SessionTestsMixin, sync and async) on huihua's store.

The mixin comes from the Django sdist of the installed version (see conftest.py) and runs with
`backend = SessionStore` over the SQLite store and the Redis store. Tests that cannot apply to a
server-side store with hashed keys are skipped by name, with the reason, as Django does for its
cookie backend.
"""

from __future__ import annotations

import os
import unittest
from typing import Any

import pytest
from django.test import SimpleTestCase, override_settings
from huihua_django_testsuite import SUITE_ERROR

from huihua.contrib.django.session import SessionStore

if SUITE_ERROR is not None:
    pytest.fail(SUITE_ERROR, pytrace=False)

from sessions_tests.tests import SessionTestsMixin  # type: ignore[import-not-found]

REDIS_URL = os.environ.get("HUIHUA_TEST_REDIS", "redis://127.0.0.1:6379/15")

# name -> why it cannot apply here. Keep this list short.
NOT_APPLICABLE: dict[str, str] = {}


class HuihuaSessionTests(SessionTestsMixin):  # type: ignore[misc]
    backend = SessionStore

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, reason in NOT_APPLICABLE.items():
            setattr(cls, name, unittest.skip(reason)(getattr(cls, name)))


class TestSQLiteStore(HuihuaSessionTests, SimpleTestCase):
    pass  # HUIHUA_STORE from conftest: a fresh SQLite file


@override_settings(HUIHUA_STORE=REDIS_URL)
class TestRedisStore(HuihuaSessionTests, SimpleTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        try:
            client.flushdb()
        except redis.ConnectionError as exc:
            pytest.fail(f"Redis is not reachable at {REDIS_URL} ({exc}); run scripts/services")
        finally:
            client.close()
        super().setUpClass()
