from __future__ import annotations

from django.apps import AppConfig


class HuihuaConfig(AppConfig):
    name = "huihua.contrib.django"
    label = "huihua"
    verbose_name = "huihua sessions"
    default_auto_field = "django.db.models.BigAutoField"
