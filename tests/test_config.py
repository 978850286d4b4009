"""huihua.config: every setting declared once, read from the environment, a TOML file or code,
checked strictly, and the README's table written from the declarations."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from huihua.config import SETTINGS, ConfigError, Secret, Settings, load, markdown_table
from huihua.core.manager import DEFAULT_MAX_DATA_BYTES

ROOT = Path(__file__).resolve().parent.parent


def test_readme_table_is_the_declarations() -> None:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- settings-table:[^\n]*-->\n(.*?)<!-- /settings-table -->", readme, re.DOTALL)
    assert found, "README.md lost its settings-table block"
    assert found[1] == markdown_table(), "README.md's settings table drifted: run scripts/settings-table"
    for declared in SETTINGS.values():  # one row each, so none is forgotten
        assert f"| `{declared.env}`" in found[1]


def test_settings_table_script_checks_the_readme() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts/settings-table"), "--check"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_defaults_are_declared_once() -> None:
    """The defaults other modules use are the declared ones (no second literal to drift)."""
    from huihua.wechat import client, tokens

    assert SETTINGS["max_data_bytes"].default == DEFAULT_MAX_DATA_BYTES
    assert client.DEFAULT_API_BASE == tokens.DEFAULT_API_BASE == SETTINGS["wechat_api_base"].default
    for path in (ROOT / "src").rglob("*.py"):
        text = path.read_text()
        for literal in ('"sqlite:///./huihua.db"', '"https://api.weixin.qq.com"', '"wx1234567890abcdef"'):
            if literal in text:
                assert path.name in ("config.py", "state.py"), f"{literal} repeated in {path}"


def test_sources_env_file_default(tmp_path: Path) -> None:
    toml = tmp_path / "huihua.toml"
    toml.write_text('max_data_bytes = 1000\nallowed_origins = ["https://a.example/"]\n')
    loaded = load({"HUIHUA_CONFIG": str(toml), "HUIHUA_MAX_DATA_BYTES": "2000", "HUIHUA_SWEEP_INTERVAL": "5"})
    assert loaded.settings.max_data_bytes == 2000  # the environment wins over the file
    assert loaded.settings.allowed_origins == ("https://a.example",)
    assert loaded.sources["max_data_bytes"] == "env"
    assert loaded.sources["allowed_origins"] == f"file {toml}"
    assert loaded.sources["store"] == "default"
    assert loaded.unknown == ()


def test_unknown_names_get_the_nearest_setting(tmp_path: Path) -> None:
    toml = tmp_path / "huihua.toml"
    toml.write_text('stor = "memory://"\n')
    env = {"HUIHUA_CONFIG": str(toml), "HUIHUA_STOR": "memory://", "HUIHUA_SERVICEKEY": "k",
           "HUIHUA_XYZZY": "1", "HUIHUA_TEST_REDIS": "redis://h/0", "OTHER": "x"}  # fmt: skip
    assert set(load(env).unknown) == {
        f"{toml}: 'stor' is not a setting; did you mean store?",
        "HUIHUA_STOR is not a setting; did you mean HUIHUA_STORE?",
        "HUIHUA_SERVICEKEY is not a setting; did you mean HUIHUA_SERVICE_KEY?",
        "HUIHUA_XYZZY is not a setting",
    }


@pytest.mark.parametrize(
    ("env", "expected"),
    [({"HUIHUA_MAX_DATA_BYTES": "64k"}, "HUIHUA_MAX_DATA_BYTES='64k': expected a whole number"),
     ({"HUIHUA_MAX_DATA_BYTES": "-1"}, "HUIHUA_MAX_DATA_BYTES='-1': expected a whole number"),
     ({"HUIHUA_SWEEP_INTERVAL": "soon"}, "HUIHUA_SWEEP_INTERVAL='soon': expected a number of seconds"),
     ({"HUIHUA_COOKIE_SECURE": "maybe"}, "HUIHUA_COOKIE_SECURE='maybe': expected 1 or 0"),
     ({"HUIHUA_TRUST_PROXY": "maybe"}, "HUIHUA_TRUST_PROXY='maybe': 'maybe' is not an IP address"),
     ({"HUIHUA_LOG_FORMAT": "xml"}, "HUIHUA_LOG_FORMAT='xml': expected text or json"),
     ({"HUIHUA_DATABASE": "redis://h/0"}, "HUIHUA_DATABASE='redis://h/0': unknown database URL scheme")],
)  # fmt: skip
def test_values_that_do_not_fit(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load(env)
    assert str(raised.value).startswith(expected)
    assert "\n" not in str(raised.value)


def test_every_bad_value_is_said_at_once() -> None:
    with pytest.raises(ConfigError) as raised:
        load({"HUIHUA_MAX_DATA_BYTES": "64k", "HUIHUA_STORE": "redis:/host"})
    assert [line.split("=")[0] for line in str(raised.value).splitlines()] == [
        "HUIHUA_STORE", "HUIHUA_MAX_DATA_BYTES"
    ]  # fmt: skip


def test_toml_values_are_typed_strictly(tmp_path: Path) -> None:
    toml = tmp_path / "huihua.toml"
    toml.write_text("max_data_bytes = true\n")
    with pytest.raises(ConfigError, match=r"^HUIHUA_MAX_DATA_BYTES='True': expected a whole number"):
        load({"HUIHUA_CONFIG": str(toml)})


@pytest.mark.parametrize(
    "url",
    ["redis:/host", "redis//host", "redis://", "redis://h:99999/0", "redis://h/x", "sqlite://",
     "ftp://nowhere", "postgresql:/db", "redis+cluster://h/", "redis+sentinel://h:1/", "unix://relative"],
)  # fmt: skip
def test_store_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigError, match=r"^HUIHUA_STORE='.*': .*expected a store URL"):
        load({"HUIHUA_STORE": url})


@pytest.mark.parametrize(
    "url",
    ["memory://", "memory://shared", "sqlite:///./huihua.db", "sqlite:////tmp/x.db?synchronous=full",
     "redis://localhost:6379/0", "redis://:pw@h", "rediss://user:pw@[::1]:6380/2", "unix:///tmp/r.sock?db=1",
     "redis+cluster://a:7000,b:7001/", "redis+sentinel://a:26379,b:26379/mymaster/0",
     "postgresql://u:p@h:5432/db?sslmode=require", "postgresql:///huihua", "postgres://h/db"],
)  # fmt: skip
def test_store_urls_accepted(url: str) -> None:
    assert load({"HUIHUA_STORE": url}).settings.store == url


def test_a_bad_secret_is_not_shown() -> None:
    with pytest.raises(ConfigError) as raised:
        Settings(service_key=12345)  # type: ignore[arg-type]
    assert "12345" not in str(raised.value) and "HUIHUA_SERVICE_KEY='***'" in str(raised.value)


def test_settings_from_code_take_plain_values() -> None:
    s = Settings(service_key="k", wechat_secret="w", secret_key=("a", "b"), allowed_origins="https://x/")  # type: ignore[arg-type]
    assert s.service_key == Secret("k") and s.wechat_secret == Secret("w")
    assert s.secret_key == (Secret("a"), Secret("b"))
    assert s.allowed_origins == ("https://x",)
    with pytest.raises(ConfigError, match="HUIHUA_MAX_DATA_BYTES"):
        Settings(max_data_bytes="64k")  # type: ignore[arg-type]
