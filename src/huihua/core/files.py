"""Files that hold secrets or session data are the owner's alone (mode 0600), whatever the umask.

SQLite gives a database's -wal and -shm files the mode of the database file, so creating the
database file 0600 before SQLite opens it covers all three.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

PRIVATE_MODE = 0o600


def _open_private(path: Path) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    if hasattr(os, "fchmod"):
        os.fchmod(fd, PRIVATE_MODE)  # a umask can take bits away; the mode must be exactly this
    return fd


def create_private(path: str | Path) -> None:
    """An empty owner-only file at `path`, unless something is there already. A SQLite path that
    names no file (":memory:", a "file:" URI) or a missing folder is left to SQLite to report."""
    text = str(path)
    if not text or text == ":memory:" or text.startswith("file:"):
        return
    try:
        os.close(_open_private(Path(text)))
    except (FileExistsError, FileNotFoundError, NotADirectoryError):
        pass


def write_private_once(path: Path, text: str) -> str:
    """Put `text` into a new owner-only file at `path`, atomically: a reader never sees it half
    written, and when another process got there first its text wins. Returns the file's text."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = _open_private(temporary)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
    finally:
        temporary.unlink()
    return path.read_text()
