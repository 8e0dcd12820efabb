"""The history of test outcomes across runs: one plain JSON file per finished run.

Layout (another tool can read it):
    <folder>/runs/<YYYYmmddTHHMMSSffffffZ>-<run id>.json
    {"schema": 1, "run_id": "...", "finished_at": "2026-12-06T04:36:17Z",
     "branch": "main" | null, "commit": "abc123" | null,
     "tests": {"<node id>": {"outcome": "failed", "duration_s": 1.23, "attempts": 2,
                             "quarantined": false}}}

Each file is written atomically (temp file + rename) under a name no other run can take,
so caches of several branches merge by copying files. After a write only the newest
`HISTORY_RUNS` run files are kept; files that are not run files are never touched. Reading
skips what it cannot read; neither reading nor writing ever raises.

The labels of a failure (`label_failure`), the flakiest tests and the slowest-growing ones
are computed here from the runs, newest first, that came before the run being labelled.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple

from orchestrator.outcomes import OUTCOMES, PROBLEMS

HISTORY_SCHEMA = 1
HISTORY_RUNS = 100  # run files kept in a history folder
RUNS_DIR = "runs"
# <YYYYmmddTHHMMSSffffffZ>-<run id>.json; nothing else in runs/ is ours to read or delete
RUN_FILE = re.compile(r"^(\d{8}T\d{12}Z)-([A-Za-z0-9._-]+)\.json$")

Label = Literal["new", "failing before", "known flaky"]
LABELS: tuple[Label, ...] = ("new", "failing before", "known flaky")  # most urgent first
RECENT_RUNS = 10  # runs a label looks back on


class HistoryOutcome(NamedTuple):
    """One test in one run (a named tuple: a history holds ~100,000 of them, read at once)."""

    outcome: str  # one of OUTCOMES
    duration_s: float = 0.0
    attempts: int = 1
    quarantined: bool = False


@dataclass(frozen=True)
class HistoryRun:
    """One finished run: its id, when it finished (ISO 8601 UTC), where, and every test."""

    run_id: str
    finished_at: str
    branch: str | None
    commit: str | None
    tests: Mapping[str, HistoryOutcome] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": HISTORY_SCHEMA,
            "run_id": self.run_id,
            "finished_at": self.finished_at,
            "branch": self.branch,
            "commit": self.commit,
            "tests": {
                nodeid: {
                    "outcome": t.outcome,
                    "duration_s": round(t.duration_s, 6),
                    "attempts": t.attempts,
                    "quarantined": t.quarantined,
                }
                for nodeid, t in self.tests.items()
            },
        }

    @classmethod
    def from_json(cls, data: object) -> HistoryRun | None:
        """The inverse of `to_json`; None for what is not a run of a schema we know.
        A test entry that cannot be read is left out, the rest of the run is kept."""
        if not isinstance(data, dict) or data.get("schema") != HISTORY_SCHEMA:
            return None
        run_id, finished_at, tests = data.get("run_id"), data.get("finished_at"), data.get("tests")
        if not isinstance(run_id, str) or not isinstance(finished_at, str):
            return None
        if not isinstance(tests, dict):
            return None
        read = {}
        for nodeid, entry in tests.items():
            outcome = _outcome(entry)
            if outcome is not None:
                read[str(nodeid)] = outcome
        branch, commit = data.get("branch"), data.get("commit")
        return cls(
            run_id=run_id,
            finished_at=finished_at,
            branch=branch if isinstance(branch, str) else None,
            commit=commit if isinstance(commit, str) else None,
            tests=read,
        )


def _outcome(entry: object) -> HistoryOutcome | None:
    if not isinstance(entry, dict):
        return None
    outcome = entry.get("outcome")
    if outcome not in _KNOWN:
        return None
    try:
        duration = float(entry.get("duration_s") or 0.0)
        attempts = int(entry.get("attempts") or 1)
    except (TypeError, ValueError):
        return None
    return HistoryOutcome(outcome, duration, attempts, entry.get("quarantined") is True)


_KNOWN = frozenset(OUTCOMES)


# -- reading and writing --------------------------------------------------------------------


def load_history(folder: Path) -> list[HistoryRun]:
    """Every readable run in `folder`, newest first (by file name: the time it was written).
    A missing folder is an empty history; foreign, broken or unknown-schema files are
    skipped. Never raises."""
    runs = []
    for path in _run_files(folder / RUNS_DIR):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        run = HistoryRun.from_json(data)
        if run is not None:
            runs.append(run)
    return runs


def record_run(folder: Path, run: HistoryRun, *, now: datetime | None = None) -> Path | None:
    """Write `run` as a new file in `folder`, then keep only the newest `HISTORY_RUNS` run
    files. Returns the file, or None when it could not be written (one line on stderr says
    why: a read-only or full folder never fails the run)."""
    runs_dir = folder / RUNS_DIR
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = runs_dir / f"{stamp}-{_file_safe(run.run_id)}.json"
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, json.dumps(run.to_json(), separators=(",", ":")) + "\n")
    except OSError as exc:
        print(f"history  not recorded in {folder}: {exc}", file=sys.stderr)
        return None
    prune(folder)
    return path


def prune(folder: Path, keep: int = HISTORY_RUNS) -> list[Path]:
    """Delete all but the newest `keep` run files; returns what was deleted. Never raises."""
    removed = []
    for path in _run_files(folder / RUNS_DIR)[keep:]:
        try:
            path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed


def _run_files(runs_dir: Path) -> list[Path]:
    """The run files in `runs_dir`, newest first."""
    try:
        names = [
            entry.name
            for entry in os.scandir(runs_dir)
            if RUN_FILE.match(entry.name) and entry.is_file()
        ]
    except OSError:
        return []
    return [runs_dir / name for name in sorted(names, reverse=True)]


def _file_safe(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", run_id).strip("-.") or "run"


def _write_atomically(path: Path, text: str) -> None:
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


# -- what the history says about a test ---------------------------------------------------


def record_of(
    runs: Sequence[HistoryRun], test_id: str, n: int
) -> list[tuple[HistoryRun, HistoryOutcome]]:
    """The last `n` runs that ran `test_id` (a node id), newest first, with its outcome."""
    found = []
    for run in runs:
        outcome = run.tests.get(test_id)
        if outcome is not None:
            found.append((run, outcome))
            if len(found) >= n:
                break
    return found


def recent_outcomes(runs: Sequence[HistoryRun], test_id: str, n: int) -> list[tuple[str, str]]:
    """(run id, outcome) of the last `n` runs that ran `test_id`, newest first."""
    return [(run.run_id, outcome.outcome) for run, outcome in record_of(runs, test_id, n)]


def flips(outcomes: Iterable[str]) -> int:
    """How often a sequence of outcomes changed between passing and failing (a flaky
    outcome counts as both: it flipped inside its run); skips count as neither."""
    count, last = 0, None
    for outcome in outcomes:
        if outcome == "flaky":
            count += 1
            continue
        state = "fail" if outcome in PROBLEMS else "pass" if outcome == "passed" else None
        if state is None:
            continue
        if last is not None and state != last:
            count += 1
        last = state
    return count


def label_failure(runs: Sequence[HistoryRun], test_id: str, recent: int = RECENT_RUNS) -> Label:
    """The label of a test failing now, from the runs before this one (newest first):
    known flaky  -- flaky, or flipped between passing and failing twice or more, in its last
                    `recent` runs;
    failing before -- otherwise, it failed in the last run that ran it;
    new          -- otherwise (it passed recently, or was never seen)."""
    outcomes = [outcome for _run_id, outcome in recent_outcomes(runs, test_id, recent)]
    if "flaky" in outcomes or flips(outcomes) >= 2:
        return "known flaky"
    if outcomes and outcomes[0] in PROBLEMS:
        return "failing before"
    return "new"


def label_failures(
    runs: Sequence[HistoryRun], test_ids: Iterable[str], recent: int = RECENT_RUNS
) -> dict[str, Label]:
    """`label_failure` for each of `test_ids`."""
    return {test_id: label_failure(runs, test_id, recent) for test_id in test_ids}


@dataclass(frozen=True)
class Flakiness:
    nodeid: str
    runs: int  # runs in the history that ran it
    flips: int  # pass <-> fail changes, flaky outcomes included
    flaky: int  # flaky outcomes


def flakiest(runs: Sequence[HistoryRun], limit: int = 10) -> list[Flakiness]:
    """The tests with the most flips in the history (ties: most flaky outcomes, then name);
    tests that never flipped are left out."""
    by_test: dict[str, list[str]] = {}
    for run in reversed(runs):  # oldest first
        for nodeid, outcome in run.tests.items():
            by_test.setdefault(nodeid, []).append(outcome.outcome)
    found = []
    for nodeid, outcomes in by_test.items():
        count = flips(outcomes)
        if count:
            found.append(Flakiness(nodeid, len(outcomes), count, outcomes.count("flaky")))
    found.sort(key=lambda f: (-f.flips, -f.flaky, f.nodeid))
    return found[:limit]


@dataclass(frozen=True)
class Growth:
    nodeid: str
    recent_s: float  # median duration of its last `window` runs
    before_s: float  # median of the `window` runs before those

    @property
    def ratio(self) -> float:
        return self.recent_s / self.before_s if self.before_s > 0 else float("inf")


def slowest_growing(
    runs: Sequence[HistoryRun], limit: int = 10, window: int = 5, min_growth_s: float = 0.05
) -> list[Growth]:
    """The tests whose duration grew the most: median of their last `window` passing runs
    against the median of the `window` before those (tests with fewer runs are left out,
    and so are those that grew by less than `min_growth_s`)."""
    by_test: dict[str, list[float]] = {}
    for run in runs:  # newest first
        for nodeid, outcome in run.tests.items():
            if outcome.outcome in ("passed", "flaky"):
                durations = by_test.setdefault(nodeid, [])
                if len(durations) < 2 * window:
                    durations.append(outcome.duration_s)
    found = []
    for nodeid, durations in by_test.items():
        if len(durations) < 2 * window:
            continue
        recent = statistics.median(durations[:window])
        before = statistics.median(durations[window:])
        if recent - before >= min_growth_s:
            found.append(Growth(nodeid, recent, before))
    found.sort(key=lambda g: (-(g.recent_s - g.before_s), g.nodeid))
    return found[:limit]
