"""Fetch Django's session test suite (tests/sessions_tests/) from the sdist of the installed
Django, once, into .cache/ (git-ignored). Nothing of Django's tests is copied into the repo."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parents[2]
SUITE_CACHE = ROOT / ".cache" / "django-suite" / django.__version__


def _download_sdist(into: Path) -> Path:
    spec = f"django=={django.__version__}"
    args = ["download", "--no-deps", "--no-binary", "django", "--quiet", spec, "-d", str(into)]
    uv = shutil.which("uv")
    command = [uv, "tool", "run", "pip", *args] if uv else [sys.executable, "-m", "pip", *args]
    subprocess.run(command, check=True, timeout=600)
    return next(into.glob("django-*.tar.gz"))


def fetch_session_suite() -> Path:
    """The directory holding `sessions_tests/` for the installed Django (downloaded once)."""
    target = SUITE_CACHE / "sessions_tests"
    if (target / "tests.py").is_file():
        return SUITE_CACHE
    SUITE_CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=SUITE_CACHE) as download:
        sdist = _download_sdist(Path(download))
        prefix = f"django-{django.__version__}/tests/sessions_tests/"
        staging = Path(download) / "sessions_tests"
        staging.mkdir()
        with tarfile.open(sdist) as archive:
            for member in archive.getmembers():
                if (
                    member.isfile()
                    and member.name.startswith(prefix)
                    and "/" not in member.name[len(prefix) :]
                ):
                    source = archive.extractfile(member)
                    assert source is not None
                    (staging / member.name[len(prefix) :]).write_bytes(source.read())
        staging.rename(target)
    return SUITE_CACHE


try:
    SUITE_DIR: Path | None = fetch_session_suite()
    SUITE_ERROR: str | None = None
except (OSError, subprocess.SubprocessError, StopIteration) as exc:  # reported by the suite
    SUITE_DIR, SUITE_ERROR = None, f"could not fetch Django's session tests: {exc}"
