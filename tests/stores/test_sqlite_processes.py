"""SQLite shared by processes: concurrent writers (K6) and kill -9 in the middle of writes (F5)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from huihua.core.errors import SessionRevoked
from huihua.core.manager import SessionManager
from huihua.stores.sqlite import SQLiteStore

WRITER = str(Path(__file__).with_name("_sqlite_writer.py"))


def integrity(path: str) -> str:
    db = sqlite3.connect(path)
    try:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()


@pytest.mark.slow
def test_k6_several_processes_write_concurrently(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    m = SessionManager(SQLiteStore(path), events=())
    shared = m.create()
    n = 40
    flavours = ["sync", "sync", "async", "async"]
    procs = [
        subprocess.Popen(
            [sys.executable, WRITER, path, "k6", f, shared.token or "", str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for f in flavours
    ]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert "StoreUnavailable" not in err and "locked" not in err
        assert out.strip() == "done"
    assert m.load(shared.token or "")["n"] == n * len(flavours)
    assert m.count() == 1 + n * len(flavours)
    assert integrity(path) == "ok"


@pytest.mark.slow
def test_f5_kill_9_loses_no_acknowledged_write(tmp_path: Path) -> None:
    path = str(tmp_path / "killed.db")
    SQLiteStore(path).close()
    proc = subprocess.Popen([sys.executable, WRITER, path, "load"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while len(lines) < 400 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line, "the writer died on its own"
        lines.append(line)
    os.kill(proc.pid, signal.SIGKILL)  # in the middle of the load: no chance to clean up
    rest = proc.stdout.read()  # acknowledgements already in the pipe count too
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    acked = [ln.split() for ln in lines + rest.splitlines(keepends=True) if ln.endswith("\n")]
    assert integrity(path) == "ok"
    m = SessionManager(SQLiteStore(path), events=())
    revoked = {t for op, t, _ in acked if op == "R"}
    updated: dict[str, int] = {}
    for op, token, i in acked:
        if op == "U":
            updated[token] = int(i)
    checked = unacknowledged = 0
    for op, token, i in acked:
        if op != "C":
            continue
        if token in revoked:
            with pytest.raises(SessionRevoked):
                m.load(token, touch=False)
            continue
        try:
            data = m.load(token, touch=False)
        except SessionRevoked:  # the write in flight at the kill may have committed: one at most
            unacknowledged += 1
            continue
        assert data["i"] == int(i)
        assert data.get("u", 0) >= updated.get(token, 0)
        checked += 1
    assert unacknowledged <= 1
    assert checked > 100
