"""/metrics with `serve --workers 2`: the totals of every worker (Prometheus multiprocess mode)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from servicekit import ServeProcess, serve_env
from test_http_metrics import sample

pytestmark = pytest.mark.slow

BATCH = 40


def worker_pids(folder: Path) -> set[str]:
    """The workers that wrote counters (prometheus-client names its files by pid)."""
    return {p.stem.rsplit("_", 1)[1] for p in folder.glob("counter_*.db")}


def test_two_workers_count_every_request_once(tmp_path: Path) -> None:
    env = serve_env(tmp_path, TMPDIR=str(tmp_path))  # the private metrics folder lands here
    server = ServeProcess(env, cwd=tmp_path, log_level="info", args=("--workers", "2")).start()
    try:
        deadline = time.monotonic() + 90
        while server.log().count("Application startup complete") < 2:  # both workers ready
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.2)
        folders = list(tmp_path.glob("huihua-metrics-*"))
        assert len(folders) == 1, "serve --workers makes one private PROMETHEUS_MULTIPROC_DIR"

        def one(_: int) -> int:
            with httpx.Client(base_url=server.url, timeout=10) as http:  # a new connection each
                return http.get("/healthz").status_code

        sent = 0
        with ThreadPoolExecutor(8) as pool:
            while len(worker_pids(folders[0])) < 2 or sent == 0:  # until both workers served
                assert sent < 20 * BATCH, "the kernel never handed a connection to the second worker"
                assert set(pool.map(one, range(BATCH))) == {200}
                sent += BATCH
        totals = []
        for _ in range(6):  # whichever worker answers /metrics, it answers the same totals
            with httpx.Client(base_url=server.url, timeout=10) as http:
                text = http.get("/metrics").text
            totals.append(
                sample(text, "huihua_http_requests_total", method="GET", route="/healthz", status="200")
            )
        assert totals == [sent] * 6
    finally:
        server.stop()
    assert not list(tmp_path.glob("huihua-metrics-*")), "serve removes its metrics folder at exit"
