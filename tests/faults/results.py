"""The figures of the fault scenarios: one JSON file per scenario, and the Markdown table.

`record(**fields)` writes `bench/results/reliability/<scenario>.json` (the shared format of
/work/briefs/results-format.md) and re-renders `bench/results/reliability.md` from every such file
(`render()`), so the table always matches the JSON files whichever test recorded last. Both run
without pytest, so `scripts/reliability-report` can re-render the table at any time.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "bench" / "results" / "reliability"
REPORT = ROOT / "bench" / "results" / "reliability.md"

FIELDS: dict[str, type | tuple[type, ...]] = {
    "scenario": str,
    "store": str,
    "description": str,
    "requests": int,
    "faults_injected": int,
    "acked_writes_checked": int,
    "lost": int,
    "resurrected": int,
    "double_applied": int,
    "status_500": int,
    "recovery_seconds": (float, int, type(None)),
    "duration_seconds": (float, int),
    "date": str,
    "notes": str,
}
STORES = ("sqlite", "redis", "postgres", "memory", "-")


def record(**fields: Any) -> Path:
    """Write one scenario's figures, then re-render the table from every scenario's file;
    `date` defaults to today (UTC), `notes` to ""."""
    fields.setdefault("date", dt.datetime.now(dt.UTC).date().isoformat())
    fields.setdefault("notes", "")
    missing = FIELDS.keys() - fields.keys()
    extra = fields.keys() - FIELDS.keys()
    if missing or extra:
        raise ValueError(f"results: missing {sorted(missing)}, unknown {sorted(extra)}")
    for name, kind in FIELDS.items():
        if not isinstance(fields[name], kind) or isinstance(fields[name], bool):
            raise TypeError(f"results: {name}={fields[name]!r} is not {kind}")
    if fields["store"] not in STORES:
        raise ValueError(f"results: store {fields['store']!r} is not one of {STORES}")
    if fields["recovery_seconds"] is not None:
        fields["recovery_seconds"] = round(float(fields["recovery_seconds"]), 2)
    fields["duration_seconds"] = round(float(fields["duration_seconds"]), 2)
    FOLDER.mkdir(parents=True, exist_ok=True)
    path = FOLDER / f"{fields['scenario']}.json"
    ordered = {name: fields[name] for name in FIELDS}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(ordered, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, path)  # a reader never sees half a file
    render()
    return path


def load_all(folder: Path | None = None) -> list[dict[str, Any]]:
    folder = FOLDER if folder is None else folder
    rows = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    return sorted(rows, key=lambda r: (STORES.index(r.get("store", "-")) if r.get("store") in STORES else 9,
                                       r["scenario"]))  # fmt: skip


def _machine() -> str:
    cpus = os.cpu_count() or 0
    return f"{platform.system()} {platform.machine()}, {cpus} cores, Python {platform.python_version()}"


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    return str(value).replace("|", "\\|").replace("\n", " ")


COLUMNS = [
    ("scenario", "scenario"), ("store", "store"), ("requests", "requests"), ("faults", "faults_injected"),
    ("acked writes checked", "acked_writes_checked"), ("lost", "lost"), ("resurrected", "resurrected"),
    ("double-applied", "double_applied"), ("500s", "status_500"), ("recovery s", "recovery_seconds"),
    ("duration s", "duration_seconds"), ("date", "date"),
]  # fmt: skip


def render(folder: Path | None = None, out: Path | None = None) -> Path:
    """bench/results/reliability.md from every file in bench/results/reliability/ (the module's
    FOLDER and REPORT at call time, so a test can point them elsewhere)."""
    out = REPORT if out is None else out
    rows = load_all(folder)
    dates = sorted({r["date"] for r in rows})
    lines = [
        "# Reliability: fault scenarios",
        "",
        "Written by the fault suite (`tests/faults`, `pytest -m faults`); re-render with "
        "`scripts/reliability-report`. Each scenario drives a real `huihua serve --workers 2` with a "
        "ledger of every acknowledged outcome (logins, increments, set/unset, logout, logout-all) and "
        "checks the store against it after the fault and the recovery.",
        "",
        f"Machine: {_machine()}. Runs: {', '.join(dates) if dates else 'none yet'}.",
        "",
        "- **lost**: acknowledged writes missing afterwards (a login, a change, a logout). "
        "**resurrected**: a revoked or expired session usable again. **double-applied**: an "
        "increment counted twice. A request whose answer was lost (timeout, 503) may count +0 or +1, "
        "never +2.",
        "- **recovery s**: from the end of the fault (store back, space freed, lock released) to the "
        "first acknowledged data change (increment, set or unset) sent after it; for a kill -9 of "
        "huihua, from the kill (the restart included); the slowest of a scenario's faults. Checked: "
        "a scenario fails unless writes are acknowledged again within 30 s of each fault's end, "
        "increments and sets both after the last. Machine load varies: other jobs shared these 2 cores.",
        "",
        "| " + " | ".join(title for title, _ in COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r.get(key)) for _, key in COLUMNS) + " |")
    lines += ["", "## What each scenario does", ""]
    for r in rows:
        note = f" {r['notes']}" if r.get("notes") else ""
        lines.append(f"- **{r['scenario']}** ({r['store']}): {r['description']}.{note}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, out)
    return out


if __name__ == "__main__":
    print(render())
