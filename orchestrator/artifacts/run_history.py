"""A run's place in the history folder (`orchestrator.history`): the runs before it, the
labels of its failures, and recording it once its results are final.

    past = RunHistory.load(folder, data.tests)                     # before rendering
    render_report(data, history=past); render_summary(data, labels=past.labels)
    record(folder, data)                                           # after

A CI shard leg does not record its part: the merge of all legs records the whole run
(`is_shard_leg`). Standard library only (`merge` runs from a bare checkout).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.artifacts.results import TestResult
from orchestrator.contract import ENV_SHARD
from orchestrator.history import (
    HistoryOutcome,
    HistoryRun,
    Label,
    label_failures,
    load_history,
    record_of,
    record_run,
)
from orchestrator.util import base_nodeid, utc_instant

HISTORY_SHOWN = 10  # earlier outcomes shown per test
GIT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class RunHistory:
    """The runs before this one (newest first) and the label of each of its failures."""

    folder: Path
    runs: Sequence[HistoryRun] = ()
    labels: Mapping[str, Label] = field(default_factory=dict)  # node id -> label

    @classmethod
    def load(
        cls, folder: Path, tests: Iterable[TestResult], *, leave_out: str | None = None
    ) -> RunHistory:
        """The history in `folder` and labels for the failed tests of `tests`; `leave_out`:
        a run id not to count (a merge of the same legs, merged again)."""
        runs = [run for run in load_history(folder) if run.run_id != leave_out]
        failed = [t.nodeid for t in tests if t.failed]
        # A repeat (`--repeat-each`) has the history of its test.
        labels = label_failures(runs, sorted({base_nodeid(nodeid) for nodeid in failed}))
        return cls(folder, runs, {nodeid: labels[base_nodeid(nodeid)] for nodeid in failed})

    def last(self, nodeid: str, n: int = HISTORY_SHOWN) -> list[tuple[HistoryRun, HistoryOutcome]]:
        """The test's outcomes in the last `n` runs that ran it, newest first."""
        return record_of(self.runs, base_nodeid(nodeid), n)


def history_run(
    tests: Iterable[TestResult],
    run_id: str,
    finished_at: str | None,
    *,
    branch: str | None = None,
    commit: str | None = None,
    quarantined: Collection[str] = (),
) -> HistoryRun:
    """The history's record of a finished run's tests (`quarantined`: their node ids). The
    repeats of a test (`--repeat-each`) are one record under the test's own id: passed or
    failed when every repeat did, else flaky; their mean duration, all their attempts."""
    repeats: dict[str, list[TestResult]] = {}
    for test in tests:
        repeats.setdefault(base_nodeid(test.nodeid), []).append(test)
    return HistoryRun(
        run_id=run_id,
        finished_at=_utc_second(finished_at),
        branch=branch,
        commit=commit,
        tests={nodeid: _outcome(runs, quarantined) for nodeid, runs in repeats.items()},
    )


def _outcome(runs: Sequence[TestResult], quarantined: Collection[str]) -> HistoryOutcome:
    """One test's record from its runs (one, or its repeats); `quarantined`: node ids."""
    outcomes = {test.outcome for test in runs}
    if len(outcomes) == 1:
        (outcome,) = outcomes
    else:
        outcome = "flaky" if outcomes & {"failed", "error"} else sorted(outcomes)[0]
    return HistoryOutcome(
        outcome=outcome,
        duration_s=sum(test.duration for test in runs) / len(runs),
        attempts=sum(len(test.attempts) + 1 for test in runs),
        quarantined=any(
            test.quarantined
            or test.nodeid in quarantined
            or base_nodeid(test.nodeid) in quarantined
            for test in runs
        ),
    )


def record(
    folder: Path,
    tests: Iterable[TestResult],
    run_id: str,
    finished_at: str | None,
    *,
    quarantined: Collection[str] = (),
    env: Mapping[str, str] | None = None,
) -> Path | None:
    """Append the run to the history in `folder` with the branch and commit it ran on;
    None when it could not be written (said on stderr; never raises)."""
    branch, commit = revision(folder, env)
    run = history_run(
        tests, run_id, finished_at, branch=branch, commit=commit, quarantined=quarantined
    )
    return record_run(folder, run)


def revision(folder: Path, env: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:
    """(branch, commit) of the checkout: GitHub's (GITHUB_HEAD_REF on a pull request, else
    GITHUB_REF_NAME; GITHUB_SHA), else `git rev-parse` from `folder` (or its nearest
    existing parent); None for what is not known."""
    values = os.environ if env is None else env
    branch = values.get("GITHUB_HEAD_REF") or values.get("GITHUB_REF_NAME") or None
    commit = values.get("GITHUB_SHA") or None
    if branch and commit:
        return branch, commit
    where = next((p for p in (folder, *folder.parents) if p.is_dir()), None)
    try:
        found = subprocess.run(
            ["git", "rev-parse", "HEAD", "--abbrev-ref", "HEAD"],  # commit, then branch
            cwd=where,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return branch, commit
    lines = found.stdout.split()
    if found.returncode != 0 or len(lines) != 2:
        return branch, commit
    git_branch = lines[1] if lines[1] != "HEAD" else None  # HEAD: detached
    return branch or git_branch, commit or lines[0]


def is_shard_leg(command: Sequence[str] | None, env: Mapping[str, str] | None = None) -> bool:
    """The run is one shard of a suite (STACK_SHARD set, or `--shard` given to its command):
    its results are a part; the merge of all shards records the whole run."""
    values = os.environ if env is None else env
    if values.get(ENV_SHARD, "").strip():
        return True
    return any(arg == "--shard" or arg.startswith("--shard=") for arg in command or ())


def _utc_second(stamp: str | None) -> str:
    """`2026-12-06T04:36:17Z` from an ISO 8601 time (now when there is none)."""
    moment = utc_instant(stamp) or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
