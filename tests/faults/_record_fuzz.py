"""The fuzz tests' `record()` (clock skew, WeChat storm, soak): the shared results format with
defaults for the fields a fuzz test has no figure for, written by tests/faults/results.py, so
this path re-renders bench/results/reliability.md from every JSON file too, like the ledger
scenarios' path does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import results

DEFAULTS: dict[str, Any] = {
    "store": "-",
    "description": "",
    "requests": 0,
    "faults_injected": 0,
    "acked_writes_checked": 0,
    "lost": 0,
    "resurrected": 0,
    "double_applied": 0,
    "status_500": 0,
    "recovery_seconds": None,
    "duration_seconds": 0.0,
}


def record(**fields: Any) -> Path:
    """Write bench/results/reliability/<scenario>.json and re-render the table; unknown field
    names are a bug."""
    unknown = set(fields) - set(results.FIELDS)
    assert not unknown, f"not in the results format: {sorted(unknown)}"
    assert fields.get("scenario"), "a scenario needs a name"
    return results.record(**{**DEFAULTS, **fields})
