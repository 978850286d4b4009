"""The results files: every record, by the ledger scenarios' path or the fuzz tests' path,
leaves bench/results/reliability.md matching the JSON files (here in a tmp folder)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import results
from _record_fuzz import record as record_fuzz


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(results, "FOLDER", tmp_path / "reliability")
    monkeypatch.setattr(results, "REPORT", tmp_path / "reliability.md")
    return tmp_path


def figures(scenario: str, requests: int) -> dict[str, Any]:
    return {
        "scenario": scenario, "store": "sqlite", "description": f"{scenario} described", "requests": requests,
        "faults_injected": 1, "acked_writes_checked": requests, "lost": 0, "resurrected": 0,
        "double_applied": 0, "status_500": 0, "recovery_seconds": 0.5, "duration_seconds": 3.0,
    }  # fmt: skip


def row(report: Path, scenario: str) -> list[str]:
    lines = [line for line in report.read_text().splitlines() if line.startswith(f"| {scenario} |")]
    assert len(lines) == 1, report.read_text()
    return [cell.strip() for cell in lines[0].strip("|").split("|")]


def test_each_record_rerenders_the_table_whichever_path_wrote_it(folder: Path) -> None:
    report = folder / "reliability.md"
    results.record(**figures("ledger-scenario", 100))
    assert row(report, "ledger-scenario")[2] == "100"
    record_fuzz(scenario="fuzz-scenario", store="redis", requests=7, duration_seconds=1.5)
    assert row(report, "fuzz-scenario")[2] == "7"
    assert row(report, "ledger-scenario")[2] == "100"  # the other files' rows stay
    # a later run of either path replaces its row at once: no stale figures
    record_fuzz(**figures("ledger-scenario", 250))
    assert row(report, "ledger-scenario")[2] == "250"
    results.record(**figures("fuzz-scenario", 9))
    assert row(report, "fuzz-scenario")[2] == "9"
    rendered = report.read_text()
    assert results.render() == report and report.read_text() == rendered  # the table is the JSON's


def test_the_fuzz_path_writes_the_shared_format_with_defaults(folder: Path) -> None:
    path = record_fuzz(scenario="clock-skew-x", store="sqlite", requests=3, duration_seconds=2.345)
    written = json.loads(path.read_text())
    assert list(written) == list(results.FIELDS)
    assert written["requests"] == 3 and written["duration_seconds"] == 2.35
    assert written["recovery_seconds"] is None and written["lost"] == 0 and written["notes"] == ""
    with pytest.raises(AssertionError, match="not in the results format"):
        record_fuzz(scenario="x", latency=1)
