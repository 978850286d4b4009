"""Fixtures of the fault scenarios: real servers, the scenario's figures, the report at the end."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
# the helpers beside this file (also if the folder becomes a package), and servicekit
sys.path[:0] = [str(HERE), str(HERE.parent / "http")]

import results  # noqa: E402
from ledger import Ledger  # noqa: E402
from load import Load  # noqa: E402
from servers import Serve  # noqa: E402
from servicekit import serve_env  # noqa: E402


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Serve]]:
    """`serve(**env)`: `huihua serve --workers 2` on the test's tmp dir; every one started is
    stopped (its whole process group) in teardown."""
    started: list[Serve] = []

    def start(workers: int = 2, port: int | None = None, **extra: str) -> Serve:
        p = Serve(serve_env(tmp_path, **extra), cwd=tmp_path, workers=workers, port=port)
        started.append(p)
        return p.start()

    yield start
    for p in started:
        p.stop()


@dataclass
class Scenario:
    """The figures of one scenario; recorded in teardown, whether the test passed or not."""

    name: str
    store: str
    description: str
    faults_injected: int = 0
    notes: list[str] = field(default_factory=list)
    load: Load | None = None
    recovery_seconds: float | None = None
    started: float = field(default_factory=time.monotonic)
    checked: bool = False  # check() ran: the fixture fails a passing test whose ledger was never checked

    def check(self) -> None:
        """The ledger's verdict: nothing lost, resurrected or applied twice, no 500, no 401 for a
        live session, no answer but 503/507-with-a-code during the fault; and recovery: after
        each fault, writes acknowledged again within the load's bound (Load.check_recovery),
        whose measurement is the scenario's `recovery_seconds`."""
        assert self.load is not None
        self.checked = True
        if self.recovery_seconds is None:
            self.recovery_seconds = self.load.recovery_seconds
        ledger = self.load.ledger
        assert not ledger.violations, ledger.summary()
        self.load.check_recovery()

    def figures(self, failed: str | None) -> dict[str, Any]:
        ledger = self.load.ledger if self.load is not None else Ledger()
        kinds = ledger.kinds()
        notes = list(self.notes)
        if ledger.allowed_losses:
            notes.append(f"{len(ledger.allowed_losses)} loss(es) inside the documented window")
        if self.load is not None and len(self.load.faults) > 1:
            each = ", ".join("–" if t is None else f"{t:.2f}" for t in self.load.recovery_times())
            notes.append(f"recovery s per fault: {each}")
        if self.load is not None and self.load.transport_errors:
            notes.append(f"{self.load.transport_errors} answers lost to dropped connections or timeouts")
        other = {
            k: v for k, v in kinds.items() if k not in ("lost", "resurrected", "double_applied", "status_500")
        }
        if other:
            notes.append(f"other violations: {other}")
        if failed:
            notes.append(f"FAILED: {failed[:300]}")
        recovery = self.recovery_seconds
        if recovery is None and self.load is not None:
            recovery = self.load.recovery_seconds
        return {
            "scenario": self.name,
            "store": self.store,
            "description": self.description,
            "requests": ledger.requests,
            "faults_injected": self.faults_injected,
            "acked_writes_checked": ledger.acked_writes_checked(),
            "lost": kinds.get("lost", 0) + kinds.get("false_401", 0),
            "resurrected": kinds.get("resurrected", 0),
            "double_applied": kinds.get("double_applied", 0),
            "status_500": kinds.get("status_500", 0),
            "recovery_seconds": recovery,
            "duration_seconds": time.monotonic() - self.started,
            "notes": "; ".join(notes),
        }


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[_OUTCOME] = report.longreprtext.splitlines()[-1] if report.failed else None


_OUTCOME = pytest.StashKey[str | None]()


@pytest.fixture
def scenario(request: pytest.FixtureRequest) -> Iterator[Callable[..., Scenario]]:
    made: list[Scenario] = []

    def make(name: str, store: str, description: str) -> Scenario:
        s = Scenario(name, store, description)
        made.append(s)
        return s

    yield make
    failed = request.node.stash.get(_OUTCOME, "did not finish")
    for s in made:
        results.record(**s.figures(failed))  # re-renders bench/results/reliability.md too
    unchecked = [s.name for s in made if s.load is not None and not s.checked]
    if failed is None and unchecked:
        pytest.fail(f"ledger scenario {unchecked} never called Scenario.check() (the ledger and recovery)")
