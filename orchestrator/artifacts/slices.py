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
    """The records of each wanted test, per log name (`web.jsonl` and `web.log` share
    the name `web`: merged, each record once, in file order)."""
    return {
        test_id: {name: [record for record, _line in found] for name, found in by_name.items()}
        for test_id, by_name in _scan(logs_dir, set(test_ids), run_id).items()
    }


def write_slices(
    artifacts: Artifacts, folders: Mapping[str, Path], logs_dir: Path, run_id: str | None
) -> dict[str, list[Path]]:
    """Write `<folder>/<log name>.jsonl` for each test id in `folders` (its tests/<slug>/);
    returns the files written per test id. Lines are copied as the log has them."""
    written: dict[str, list[Path]] = {}
    for test_id, by_name in _scan(logs_dir, set(folders), run_id).items():
        folder = folders[test_id]
        for name, found in sorted(by_name.items()):
            text = "".join(line if line.endswith("\n") else line + "\n" for _r, line in found)
            relative = folder.relative_to(artifacts.root) / f"{name}.jsonl"
            written.setdefault(test_id, []).append(artifacts.write_text(relative, text))
    return written


_Found = list[tuple[dict[str, Any], str]]  # (record, its line)


def _scan(logs_dir: Path, wanted: set[str], run_id: str | None) -> dict[str, dict[str, _Found]]:
    found: dict[str, dict[str, _Found]] = {}
    seen: set[tuple[str, str, tuple[Any, ...]]] = set()
    if not wanted:
        return found
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
                if test_id not in ids:
                    continue
                # The same record from the stream and from stdout is kept once (their
                # serialisations may differ, e.g. only one copy stamped with the run id).
                key = (test_id, name, tuple(str(record.get(k)) for k in _IDENTITY))
                if key not in seen:
                    seen.add(key)
                    found.setdefault(test_id, {}).setdefault(name, []).append((record, line))
    return found


_IDENTITY = ("timestamp", "level", "logger", "message", "correlation_id", "extra")
