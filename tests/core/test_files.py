"""Private files: created 0600 whatever the umask; a written-once file keeps the first text."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from huihua.core.files import create_private, write_private_once


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_private_files_are_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        create_private(tmp_path / "a.db")
        assert write_private_once(tmp_path / "a.secret", "first") == "first"
    finally:
        os.umask(old)
    assert mode(tmp_path / "a.db") == mode(tmp_path / "a.secret") == 0o600


def test_the_first_writer_wins_and_nothing_is_left_behind(tmp_path: Path) -> None:
    path = tmp_path / "huihua.secret"
    assert write_private_once(path, "first") == "first"
    assert write_private_once(path, "second") == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huihua.secret"]


def test_existing_files_and_non_files_are_left_alone(tmp_path: Path) -> None:
    existing = tmp_path / "kept.db"
    existing.write_bytes(b"data")
    existing.chmod(0o640)
    create_private(existing)
    assert existing.read_bytes() == b"data" and mode(existing) == 0o640
    create_private(":memory:")
    create_private(tmp_path / "missing" / "x.db")  # SQLite reports the missing folder itself
    assert not (tmp_path / "missing").exists()
