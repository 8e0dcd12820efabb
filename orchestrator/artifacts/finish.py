"""Finishing a run's folder once: slices for each failed test, run.json, summary.md, index.html;
with a history folder, the failures labelled from the runs before and this run recorded in it.

On a full disk it writes what still fits and says what is missing: the room reserved when
the folder was created goes to index.html first (the full report, else a short page), then
run.json and summary.md; each names the files that could not be written and why.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from html import escape
from pathlib import Path

from orchestrator.artifacts import layout
from orchestrator.artifacts.layout import Artifacts
from orchestrator.artifacts.report import render_report
from orchestrator.artifacts.results import RunData, load_run, read_results
from orchestrator.artifacts.run_history import RunHistory, record
from orchestrator.artifacts.run_info import RunInfo, with_test_seconds
from orchestrator.artifacts.slices import write_slices
from orchestrator.artifacts.summary import DEFAULT_RERUN, render_summary
from orchestrator.history import Label
from orchestrator.quarantine import ready_among
from orchestrator.util import test_id_for


@dataclass(frozen=True)
class FinishedRun:
    folder: Path
    summary: Path  # summary.md, links relative to the folder
    report: Path  # index.html
    github_summary: str  # summary.md's text for $GITHUB_STEP_SUMMARY (links: artifact_url)
    data: RunData
    history: RunHistory | None = None  # the runs before this one, its failures' labels

    @property
    def labels(self) -> Mapping[str, Label]:
        """node id -> label of each failure (empty without a history)."""
        return self.history.labels if self.history is not None else {}


def finish_run(
    artifacts: Artifacts,
    run: RunInfo,
    logs_dir: Path | None = None,
    *,
    artifact_url: str | None = None,
    rerun_prefix: str = DEFAULT_RERUN,
    history: Path | None = None,
    record_history: bool = True,
) -> FinishedRun:
    """Call once when a run ends. `logs_dir` is where the stack's logs are (default: the
    folder's own logs/; a pytest session against a warm stack passes that stack's). Never
    raises for a write that fails: `artifacts.losses` (and the files) say what is missing.
    `history`: the history folder (None: none) whose runs label the failures; the run is
    appended to it unless `record_history` is false (a shard leg: the merge records) or it
    ran no test."""
    with artifacts.recording(artifacts.root):
        artifacts.root.mkdir(parents=True, exist_ok=True)
    run = with_test_seconds(run, artifacts.root)  # pytest's "in N.NNs", for the header
    logs = artifacts.logs_dir if logs_dir is None else logs_dir
    # A last pass over files others wrote (a non-pytest CMD's own files); the logs are
    # skipped: the harvester redacts every line it writes.
    with artifacts.recording("(the redaction pass over files others wrote)"):
        artifacts.redact_files(skip=logs)
    write_slices(artifacts, failed_test_folders(artifacts), logs, run.run_id)
    artifacts.losses.merge_journal()  # what the run's command could not write
    data = load_run(artifacts.root, info=_with_losses(run, artifacts))
    if logs != artifacts.logs_dir and logs.is_dir():  # a warm stack's logs, elsewhere
        data = replace(data, logs=os.path.relpath(logs, artifacts.root))
    past = RunHistory.load(history, data.tests) if history is not None else None
    if past is not None:  # quarantined tests that passed long enough
        data = replace(data, ready_to_leave=ready_among(data.tests, past.runs, run.run_id))
    labels = past.labels if past is not None else None
    artifacts.release_reserve()
    page = render_report(
        data, rerun_prefix=rerun_prefix, folder_hint=str(artifacts.root), history=past
    )
    report = artifacts.write_text(layout.REPORT_FILE, page)
    if layout.REPORT_FILE in artifacts.losses.describe():  # the short page fits the reserve
        artifacts.write_text(layout.REPORT_FILE, short_report(_with_losses(run, artifacts)))
    data = replace(data, info=_with_losses(run, artifacts))
    artifacts.write_json(layout.RUN_FILE, data.info.to_json())
    summary = artifacts.write_text(
        layout.SUMMARY_FILE, render_summary(data, "", rerun_prefix, labels)
    )
    github = artifacts.redactor(render_summary(data, artifact_url, rerun_prefix, labels))
    if history is not None and record_history and data.tests:  # `up`: a run with no tests
        record(history, data.tests, run.run_id, run.finished_at)
    return FinishedRun(artifacts.root, summary, report, github, data, past)


def _with_losses(run: RunInfo, artifacts: Artifacts) -> RunInfo:
    return replace(run, incomplete=artifacts.losses.describe())


def short_report(run: RunInfo) -> str:
    """index.html when the full report does not fit: the verdict and what is missing."""
    lost = "".join(
        f"<li><code>{escape(name)}</code>: {escape(why)}</li>"
        for name, why in run.incomplete.items()
    )
    error = f"<pre>{escape(run.error)}</pre>" if run.error else ""
    return (
        '<!doctype html><meta charset="utf-8">'
        f"<title>{escape(run.verdict)}: {escape(run.app)} on {escape(run.provider)}</title>"
        f"<h1>{escape(run.verdict)}: {escape(run.app)} on {escape(run.provider)}</h1>"
        f"<p>run <code>{escape(run.run_id)}</code>, command exit status "
        f"{escape(str(run.command_status))}</p>{error}"
        "<h2>Evidence incomplete</h2><p>The full report could not be written; these files "
        f"are missing or short:</p><ul>{lost}</ul>"
        '<p>See <a href="summary.md">summary.md</a>, <a href="run.json">run.json</a>, '
        '<a href="results.jsonl">results.jsonl</a> and <a href="logs/">logs/</a> '
        "if they could be written.</p>\n"
    )


def failed_test_folders(artifacts: Artifacts) -> dict[str, Path]:
    """test id -> tests/<slug>/ of every failed test (results.jsonl, and test.json markers
    of tests the results file does not know), and -> tests/<slug>/attempt-N/ of every failed
    attempt of a retried test (each attempt sent its own test id)."""
    folders = {
        test.test_id: artifacts.test_dir(test.nodeid)
        for test in read_results(artifacts.results_path)
        if test.failed
    }
    for marker in sorted(artifacts.tests_dir.glob(f"*/{layout.FAILED_TEST_FILE}")):
        info = _json_object(marker)
        nodeid = info.get("nodeid")
        if isinstance(nodeid, str):
            folders.setdefault(str(info.get("test_id") or test_id_for(nodeid)), marker.parent)
    for marker in sorted(
        artifacts.tests_dir.glob(f"*/{layout.ATTEMPT_GLOB}/{layout.FAILED_TEST_FILE}")
    ):
        test_id = _json_object(marker).get("test_id")
        if isinstance(test_id, str) and test_id:
            folders.setdefault(test_id, marker.parent)
    return folders


def _json_object(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
