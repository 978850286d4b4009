"""The fuzz helper's copy of `record()`: one JSON file per scenario, in the shared results format.

Identical in format to tests/faults/results.py (owned by the faults suite): the same fields in
the same order. The integrator may point callers at that module and delete this one.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "reliability"
FIELDS: dict[str, Any] = {
    "scenario": "",
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
    "date": "",
    "notes": "",
}
STORES = ("sqlite", "redis", "postgres", "memory", "-")


def record(**fields: Any) -> Path:
    """Write bench/results/reliability/<scenario>.json; unknown field names are a bug."""
    unknown = set(fields) - set(FIELDS)
    assert not unknown, f"not in the results format: {sorted(unknown)}"
    assert fields.get("scenario"), "a scenario needs a name"
    assert fields.get("store", "-") in STORES, fields.get("store")
    out = {**FIELDS, "date": datetime.datetime.now(datetime.UTC).date().isoformat(), **fields}
    out["duration_seconds"] = round(float(out["duration_seconds"]), 2)
    if out["recovery_seconds"] is not None:
        out["recovery_seconds"] = round(float(out["recovery_seconds"]), 2)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{out['scenario']}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, path)  # a reader never sees half a file
    return path
