"""Django reads the settings it shares with the service through the same declarations."""

from __future__ import annotations

import pytest
from django.test import override_settings

from huihua.config import SETTINGS, ConfigError
from huihua.contrib.django.conf import config
from huihua.contrib.django.wechat import wechat_settings


def test_shared_settings_are_checked_as_the_service_checks_them() -> None:
    with override_settings(HUIHUA_MAX_DATA_BYTES="64k"), pytest.raises(ConfigError) as raised:
        config()
    assert str(raised.value).startswith("HUIHUA_MAX_DATA_BYTES='64k': expected a whole number")
    with override_settings(HUIHUA_STORE="redis:/host"), pytest.raises(ConfigError, match=r"^HUIHUA_STORE="):
        config()
    with override_settings(HUIHUA_MAX_DATA_BYTES="1000"):  # as from the environment
        assert config().max_data_bytes == 1000


def test_shared_defaults_are_the_services() -> None:
    with override_settings():
        from django.conf import settings as django_settings

        del django_settings.HUIHUA_STORE
        assert config().store_url == SETTINGS["store"].default
    with override_settings(HUIHUA_WECHAT_APPID="wx0", HUIHUA_WECHAT_SECRET="s"):
        from django.conf import settings as django_settings

        del django_settings.HUIHUA_WECHAT_API_BASE
        assert wechat_settings() == ("wx0", "s", SETTINGS["wechat_api_base"].default)
