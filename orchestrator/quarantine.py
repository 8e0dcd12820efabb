"""Quarantine: known-bad tests that still run and keep their evidence but never fail the run.

The setting `quarantine` (`--quarantine`, `STACK_QUARANTINE`, `[tool.ci-stack] quarantine`)
is a list of entries. Each entry is either
- a pattern: a node id (`tests/test_x.py::test_y`, which also covers its parametrizations
  `test_y[...]`), a prefix ending at `::` or `[` boundaries (`e2e/test_sse.py` covers every
  test of that module), or an `fnmatch` pattern (`e2e/test_sse.py::*reconnect*`); or
- a file (a path relative to the project root, not a `.py` file) holding one pattern per
  line, `#` starting a comment.
A repeat of a test (`--repeat-each`) is matched by the test's own node id.

A quarantined test that passed in this run and in each of its last `READY_RUNS` runs of the
history is ready to leave quarantine (`ready_to_leave`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from orchestrator.config import ConfigError
from orchestrator.util import base_nodeid

READY_RUNS = 10  # earlier runs a quarantined test must have passed in to be ready to leave
READY_TEXT = "ready to leave quarantine"  # how the report and the summaries say so
_WILDCARDS = frozenset("*?[")


@dataclass(frozen=True)
class Quarantine:
    """The quarantine's patterns, resolved (files read)."""

    patterns: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def pattern_for(self, nodeid: str) -> str | None:
        """The first pattern that quarantines `nodeid`, or None."""
        return next((p for p in self.patterns if _covers(p, nodeid)), None)

    def matches(self, nodeid: str) -> bool:
        return self.pattern_for(nodeid) is not None

    def unmatched(self, nodeids: Iterable[str]) -> list[str]:
        """The patterns that quarantine none of `nodeids`."""
        left = list(dict.fromkeys(self.patterns))
        for nodeid in nodeids:
            left = [pattern for pattern in left if not _covers(pattern, nodeid)]
            if not left:
                break
        return left


def _covers(pattern: str, nodeid: str) -> bool:
    """`pattern` quarantines `nodeid` (a repeat by its test's node id, or its own)."""
    test = base_nodeid(nodeid)
    return _matches(test, pattern) or (test != nodeid and _matches(nodeid, pattern))


def _matches(nodeid: str, pattern: str) -> bool:
    pattern = pattern.removeprefix("./")
    if nodeid == pattern or nodeid.startswith((pattern + "::", pattern + "[")):
        return True
    return bool(_WILDCARDS & set(pattern)) and fnmatch.fnmatchcase(nodeid, pattern)


def load_quarantine(entries: Sequence[str], root: Path | None = None) -> Quarantine:
    """Patterns from the setting's entries; an entry naming a file (relative to `root`, the
    project root, else the working directory) is replaced by the patterns in it. Raises
    ConfigError for a quarantine file that exists but cannot be read."""
    patterns: list[str] = []
    for entry in entries:
        listing = _as_file(entry, root)
        if listing is None:
            patterns.append(entry)
            continue
        try:
            text = listing.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"quarantine file {listing}: cannot be read ({exc}). Fix: make it a readable "
                "UTF-8 text file with one node id or pattern per line"
            ) from None
        for line in text.splitlines():
            pattern = line.split("#", 1)[0].strip()
            if pattern:
                patterns.append(pattern)
    return Quarantine(tuple(dict.fromkeys(patterns)))


def looks_like_a_file(entry: str) -> bool:
    """An entry that reads as a file name (`quarantine.txt`, `ci/quarantine`) rather than a
    node id or pattern: a typo in it should be said as a missing file."""
    if "::" in entry or _WILDCARDS & set(entry) or entry.endswith(".py"):
        return False
    return "/" in entry or "." in Path(entry).name


def _as_file(entry: str, root: Path | None) -> Path | None:
    """The file an entry names, or None when it is a pattern (has `::`, a wildcard, is a
    `.py` test module, or names no file)."""
    if "::" in entry or _WILDCARDS & set(entry) or entry.endswith(".py"):
        return None
    path = Path(entry).expanduser()
    candidates = [path] if path.is_absolute() else [(root or Path.cwd()) / path, path]
    return next((c for c in candidates if c.is_file()), None)


# -- ready to leave ---------------------------------------------------------------------


class _Outcome(Protocol):
    @property
    def outcome(self) -> str: ...


class HistoryLike(Protocol):
    """A run of the history (`orchestrator.history.HistoryRun`)."""

    @property
    def run_id(self) -> str: ...
    @property
    def tests(self) -> Mapping[str, _Outcome]: ...


def passing_streak(
    nodeid: str, outcome: str, runs: Sequence[HistoryLike], run_id: str, limit: int = READY_RUNS
) -> int:
    """How many of the test's last `limit` earlier runs (newest first, this run `run_id`
    left out) it passed in a row, when it passed this run too; 0 when it did not."""
    if outcome != "passed":
        return 0
    streak = 0
    for run in runs:
        if run.run_id == run_id or nodeid not in run.tests:
            continue
        if run.tests[nodeid].outcome != "passed" or streak >= limit:
            break
        streak += 1
    return streak


def ready_to_leave(
    tests: Mapping[str, str], runs: Sequence[HistoryLike], run_id: str, limit: int = READY_RUNS
) -> list[str]:
    """The quarantined tests (`tests`: node id -> this run's outcome) that passed this run
    and in each of their last `limit` earlier runs of `runs` (newest first)."""
    return [
        nodeid
        for nodeid, outcome in tests.items()
        if passing_streak(nodeid, outcome, runs, run_id, limit) >= limit
    ]


class _QuarantinedTest(Protocol):
    @property
    def nodeid(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def quarantined(self) -> bool: ...


def ready_among(
    tests: Iterable[_QuarantinedTest], runs: Sequence[HistoryLike], run_id: str
) -> tuple[str, ...]:
    """`ready_to_leave` for the quarantined ones of a run's tests (`TestResult`s)."""
    outcomes = {test.nodeid: test.outcome for test in tests if test.quarantined}
    return tuple(ready_to_leave(outcomes, runs, run_id)) if outcomes else ()
