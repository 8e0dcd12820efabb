"""Per-test log slices: only this run's records of one test, taken from a logs folder.

One pass over every file in the logs folder finds the records of all wanted tests at once
(a cheap regex spots a line's test ids; only lines naming a wanted test are parsed), so the
cost grows with the log size, not with logs x failed tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from orchestrator.artifacts.layout import Artifacts

_TEST_ID = re.compile(r'"test_id"\s*:\s*"([^"\\]+)"')

Slices = dict[str, dict[str, list[dict[str, Any]]]]  # test id -> log name -> records


def belongs_to_run(record: Mapping[str, Any], run_id: str | None) -> bool:
    """False only when a run id is known and the record carries another one (records
    without a run id, from logs written before stamping, are kept)."""
    stamped = record.get("run_id")
    return run_id is None or stamped is None or stamped == run_id


def log_files(logs_dir: Path) -> list[Path]:
    """The logs a slice is cut from: `<name>.jsonl` (streams) and `<name>.log` (stdout)."""
    if not logs_dir.is_dir():
        return []
    return sorted(p for p in logs_dir.iterdir() if p.is_file() and p.suffix in (".jsonl", ".log"))


def collect_slices(logs_dir: Path, test_ids: Iterable[str], run_id: str | None) -> Slices:
    """The records of each wanted test, per log name (`backend.jsonl` and `backend.log` share
    the name `backend`: merged, each record once, in file order)."""
    wanted = set(test_ids)
    found: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    if not wanted:
        return {}
    for path in log_files(logs_dir):
        name = path.stem
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                ids = wanted.intersection(_TEST_ID.findall(line))
                if not ids:
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(record, dict) or not belongs_to_run(record, run_id):
                    continue
                test_id = record.get("test_id")
                if test_id in ids:
                    key = json.dumps(record, sort_keys=True, default=str)
                    found.setdefault(test_id, {}).setdefault(name, {}).setdefault(key, record)
    return {
        test_id: {name: list(records.values()) for name, records in by_name.items()}
        for test_id, by_name in found.items()
    }


def write_slices(
    artifacts: Artifacts, folders: Mapping[str, Path], logs_dir: Path, run_id: str | None
) -> dict[str, list[Path]]:
    """Write `<folder>/<log name>.jsonl` for each test id in `folders` (its tests/<slug>/);
    returns the files written per test id."""
    written: dict[str, list[Path]] = {}
    for test_id, by_name in collect_slices(logs_dir, folders, run_id).items():
        folder = folders[test_id]
        for name, records in sorted(by_name.items()):
            text = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records)
            relative = folder.relative_to(artifacts.root) / f"{name}.jsonl"
            written.setdefault(test_id, []).append(artifacts.write_text(relative, text))
    return written
