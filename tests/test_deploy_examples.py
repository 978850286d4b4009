"""The shipped deploy/ examples stay true: every setting the env file names exists and parses, the
README documents it, and the systemd units read that file and keep their hardening. (The nginx
site file is run for real by tests/http/test_topology.py.)"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path

from huihua.config import Settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
README = (DEPLOY.parent / "README.md").read_text()
SETTINGS = {f"HUIHUA_{f.name.upper()}" for f in fields(Settings) if f.name != "extra"}


def env_lines() -> list[tuple[str, str, bool]]:
    """(name, value, commented out) for every assignment in huihua.env.example."""
    found = []
    for line in (DEPLOY / "huihua.env.example").read_text().splitlines():
        if m := re.fullmatch(r"(#\s*)?([A-Z][A-Z0-9_]*)=(.*)", line.strip()):
            found.append((m[2], m[3], m[1] is not None))
    return found


def test_env_example_names_only_real_settings_and_they_parse() -> None:
    lines = env_lines()
    names = {name for name, _, _ in lines}
    assert names - SETTINGS == {"LISTEN_HOST"}, "unknown names in deploy/huihua.env.example"
    # every production-relevant setting is there, set or shown commented out
    assert SETTINGS - names == set(), f"missing from huihua.env.example: {sorted(SETTINGS - names)}"
    env = {name: value for name, value, _ in lines if name.startswith("HUIHUA_")}  # commented ones too
    settings = Settings.from_env(env)
    assert settings.trust_proxy and settings.store.startswith("redis://") and settings.log_format == "json"
    assert settings.database_url.startswith("postgresql://")


def test_every_setting_in_the_env_example_is_in_the_readme() -> None:
    for name, _, _ in env_lines():
        if name.startswith("HUIHUA_"):
            assert f"`{name}`" in README, f"{name} is not in README.md's Configuration table"


def test_systemd_units_read_the_env_file_and_are_hardened() -> None:
    for unit in ("huihua.service", "huihua@.service"):
        text = (DEPLOY / "systemd" / unit).read_text()
        options = dict(re.findall(r"^(\w+)=(.*)$", text, re.M))
        assert options["EnvironmentFile"] == "/etc/huihua/huihua.env"
        assert "huihua serve --host ${LISTEN_HOST}" in options["ExecStart"]
        for key, value in {"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
                           "PrivateTmp": "yes", "ProtectHome": "yes", "CapabilityBoundingSet": ""}.items():  # fmt: skip
            assert options.get(key) == value, f"{unit}: {key}={options.get(key)!r}"
    assert "--port %i" in (DEPLOY / "systemd" / "huihua@.service").read_text()


def test_systemd_units_verify_clean(tmp_path: Path) -> None:
    """systemd's own checker: every option known and well-formed (it warns, on stderr, about
    unknown keys it would ignore). The binary and env file are pointed at ones that exist here."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing (Debian: apt-get install -y systemd)"
    (tmp_path / "huihua.env").write_text("LISTEN_HOST=127.0.0.1\n")
    for unit, name in (("huihua.service", "huihua.service"), ("huihua@.service", "huihua@8600.service")):
        text = (DEPLOY / "systemd" / unit).read_text()
        text = text.replace("/opt/huihua/venv/bin/huihua", "/usr/bin/env").replace(
            "/etc/huihua/huihua.env", str(tmp_path / "huihua.env")
        )
        (tmp_path / name).write_text(text)
        run = subprocess.run(
            [analyze, "verify", str(tmp_path / name)], check=False, capture_output=True, text=True
        )
        assert run.returncode == 0 and not run.stderr.strip() and not run.stdout.strip(), (
            run.stderr + run.stdout
        )
