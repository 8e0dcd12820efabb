"""A run folder read into data: its RunInfo, every test, and each failed test's evidence."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from orchestrator.artifacts import layout
from orchestrator.artifacts.junit import read_junit
from orchestrator.artifacts.run_info import RunInfo
from orchestrator.artifacts.timeline import (
    TimelineEntry,
    console_entry,
    lifecycle_entries,
    merge,
    record_entry,
    step_entry,
)
from orchestrator.artifacts.trace_steps import read_steps
from orchestrator.outcomes import OUTCOMES, PROBLEMS, Outcome
from orchestrator.util import test_id_for, test_slug


@dataclass(frozen=True)
class Transcript:
    name: str  # transcript-1.jsonl
    url: str
    entries: list[dict[str, Any]]


@dataclass(frozen=True)
class Evidence:
    """What a failed test left in tests/<slug>/ (paths relative to the run folder)."""

    folder: str
    files: list[str] = field(default_factory=list)
    screenshots: list[str] = field(default_factory=list)
    traces: list[str] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    transcripts: list[Transcript] = field(default_factory=list)


@dataclass(frozen=True)
class Attempt:
    """An earlier, failed attempt of a retried test (its evidence in tests/<slug>/attempt-N/)."""

    number: int
    outcome: str  # failed | error
    phase: str | None = None
    message: str = ""
    longrepr: str = ""
    crash: str | None = None
    duration: float = 0.0
    test_id: str = ""
    folder: str | None = None  # relative to the run folder
    evidence: Evidence | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Attempt:
        return cls(
            number=int(data.get("attempt") or 0),
            outcome=str(data.get("outcome") or "failed"),
            phase=data.get("phase"),
            message=str(data.get("message") or ""),
            longrepr=str(data.get("longrepr") or ""),
            crash=data.get("crash"),
            duration=float(data.get("duration") or 0.0),
            test_id=str(data.get("test_id") or ""),
            folder=data.get("folder"),
        )


@dataclass(frozen=True)
class TestResult:
    """One test as the evidence plugin recorded it (or junit.xml told, as a fallback)."""

    __test__ = False  # not a pytest test class

    nodeid: str
    outcome: Outcome
    duration: float = 0.0
    location: str | None = None  # file:line of the test function
    phase: str | None = None  # setup | call | teardown: where it failed
    message: str = ""  # the one-line reason (the exception's message)
    longrepr: str = ""  # the full failure with its code frame
    crash: str | None = None  # file:line where it failed
    test_id: str = ""
    started_at: str | None = None
    evidence: Evidence | None = None
    attempts: list[Attempt] = field(default_factory=list)  # earlier failed ones (retries)
    quarantined: bool = False  # runs, keeps its evidence, never fails the run

    @property
    def failed(self) -> bool:
        return self.outcome in PROBLEMS

    @property
    def has_evidence(self) -> bool:
        """Failed, or flaky (its failed attempts keep theirs)."""
        return self.failed or self.outcome == "flaky"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TestResult:
        nodeid = str(data["nodeid"])
        outcome = data.get("outcome")
        return cls(
            nodeid=nodeid,
            outcome=cast(Outcome, outcome if outcome in OUTCOMES else "error"),
            duration=float(data.get("duration") or 0.0),
            location=data.get("location"),
            phase=data.get("phase"),
            message=str(data.get("message") or ""),
            longrepr=str(data.get("longrepr") or ""),
            crash=data.get("crash"),
            test_id=str(data.get("test_id") or test_id_for(nodeid)),
            started_at=data.get("started_at"),
            attempts=[
                Attempt.from_json(a) for a in data.get("attempts") or [] if isinstance(a, dict)
            ],
            quarantined=data.get("quarantined") is True,
        )


@dataclass(frozen=True)
class Totals:
    tests: int
    counts: dict[str, int]
    seconds: float

    def __getitem__(self, outcome: str) -> int:
        return self.counts.get(outcome, 0)


@dataclass(frozen=True)
class RunData:
    """Everything the summary and the report show. `root` is the folder the relative paths
    in `tests[*].evidence` start from; `logs` is the logs folder relative to it, if any."""

    root: Path
    info: RunInfo
    tests: list[TestResult]
    has_junit: bool = False
    logs: str | None = None
    ready_to_leave: tuple[str, ...] = ()  # quarantined tests that passed long enough

    @property
    def failures(self) -> list[TestResult]:
        """The failures that count (a quarantined test's do not)."""
        return [t for t in self.tests if t.failed and not t.quarantined]

    @property
    def flaky(self) -> list[TestResult]:
        return [t for t in self.tests if t.outcome == "flaky" and not t.quarantined]

    @property
    def quarantined(self) -> list[TestResult]:
        return [t for t in self.tests if t.quarantined]

    @property
    def totals(self) -> Totals:
        counts: dict[str, int] = {outcome: 0 for outcome in OUTCOMES}
        for test in self.tests:
            counts[test.outcome] += 1
        return Totals(len(self.tests), counts, sum(t.duration for t in self.tests))


def load_run(folder: Path, info: RunInfo | None = None) -> RunData:
    """Read a finished (or still running) run folder; `info` overrides its run.json."""
    if info is None:
        info = _read_info(folder)
    tests = read_results(folder / layout.RESULTS_FILE)
    junit = read_junit(folder / layout.JUNIT_FILE)
    if not tests and junit is not None:
        tests = [_from_junit_case(case) for case in junit.cases]
    tests = [_with_evidence(folder, test) if test.has_evidence else test for test in tests]
    # failures that count first, then flaky tests, then quarantined ones, otherwise run order
    tests.sort(key=_rank)
    logs = layout.LOGS_DIR if (folder / layout.LOGS_DIR).is_dir() else None
    return RunData(folder, info, tests, has_junit=junit is not None, logs=logs)


def _rank(test: TestResult) -> int:
    """Failures that count, flaky tests, quarantined ones that failed or were flaky, the rest."""
    if test.quarantined:
        return 2 if test.has_evidence else 3
    return 0 if test.failed else 1 if test.has_evidence else 3


def read_results(path: Path) -> list[TestResult]:
    """results.jsonl: one line per test; a later line for a node id replaces the earlier
    one (a teardown error after a passing call); broken lines are skipped."""
    by_nodeid: dict[str, TestResult] = {}
    for data in _json_lines(path):
        if "nodeid" in data:
            by_nodeid.pop(str(data["nodeid"]), None)
            by_nodeid[str(data["nodeid"])] = TestResult.from_json(data)
    return list(by_nodeid.values())


def _read_info(folder: Path) -> RunInfo:
    for name in (layout.RUN_FILE, layout.STACK_FILE):
        data = _json_file(folder / name)
        if data is not None:
            if name == layout.STACK_FILE:  # no run.json yet: what stack.json knows
                data = {"verdict": "error", "stack": data, **data}
            return RunInfo.from_json(data)
    return RunInfo(run_id="?", provider="?", verdict="error")


def _from_junit_case(case: Any) -> TestResult:
    path = case.file or case.classname.replace(".", "/") + ".py"
    nodeid = f"{path}::{case.name}"
    return TestResult(
        nodeid=nodeid,
        outcome=case.outcome,
        duration=case.seconds,
        location=f"{case.file}:{case.line}" if case.file and case.line else None,
        message=case.message,
        longrepr=case.text,
        test_id=test_id_for(nodeid),
        quarantined=case.quarantined,
    )


def _with_evidence(root: Path, test: TestResult) -> TestResult:
    folder = root / layout.TESTS_DIR / test_slug(test.nodeid)
    evidence = _evidence(root, folder)
    details = _json_file(folder / layout.FAILED_TEST_FILE) or {}
    if not test.longrepr and details.get("longrepr"):
        test = TestResult.from_json({**details, "outcome": test.outcome, "nodeid": test.nodeid})
    attempts = test.attempts or [  # results.jsonl without them: the attempt folders' test.json
        Attempt.from_json({**(_json_file(marker) or {}), "folder": None})
        for marker in sorted(folder.glob(f"{layout.ATTEMPT_GLOB}/{layout.FAILED_TEST_FILE}"))
    ]
    attempts = [
        replace(a, evidence=_evidence(root, folder / layout.ATTEMPT_DIR.format(a.number)))
        for a in attempts
    ]
    return replace(test, evidence=evidence, attempts=attempts)


def _evidence(root: Path, folder: Path) -> Evidence:
    """What one folder holds (a test's, without its attempt-N/ folders; or one attempt's)."""
    files = (
        sorted(
            p
            for p in folder.rglob("*")
            if p.is_file() and not p.relative_to(folder).parent.match(layout.ATTEMPT_GLOB)
        )
        if folder.is_dir()
        else []
    )
    relative = [p.relative_to(root).as_posix() for p in files]
    timeline: list[TimelineEntry] = []
    transcripts = []
    for path in files:
        if path.parent != folder or path.suffix != ".jsonl":
            continue
        if path.name == layout.CONSOLE_FILE:
            timeline += [console_entry(event) for event in _json_lines(path)]
        elif path.match(layout.TRANSCRIPT_GLOB):
            lines = _json_lines(path)
            url = str(lines[0].get("url", "?")) if lines else "?"
            transcripts.append(Transcript(path.name, url, lines[1:]))
        else:  # a log slice: web.jsonl, worker-1.jsonl, ...
            timeline += [record_entry(path.stem, record) for record in _json_lines(path)]
    pairs = list(zip(files, relative, strict=True))
    # The test itself: its start, failure and end (test.json), and its steps (the traces).
    timeline += lifecycle_entries(_json_file(folder / layout.FAILED_TEST_FILE) or {})
    for path, _ in pairs:
        if path.match(layout.TRACE_GLOB):
            timeline += [step_entry(step) for step in read_steps(path)]
    return Evidence(
        folder=folder.relative_to(root).as_posix(),
        files=relative,
        screenshots=[r for p, r in pairs if p.match(layout.SCREENSHOT_GLOB)],
        traces=[r for p, r in pairs if p.match(layout.TRACE_GLOB)],
        timeline=merge(timeline),
        transcripts=transcripts,
    )


def _json_file(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _json_lines(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    records = []
    for line in text.splitlines():
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict):
            records.append(data)
    return records
