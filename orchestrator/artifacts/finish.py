"""Finishing a run's folder once: slices for each failed test, run.json, summary.md, index.html."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from orchestrator.artifacts import layout
from orchestrator.artifacts.layout import Artifacts
from orchestrator.artifacts.report import render_report
from orchestrator.artifacts.results import RunData, load_run, read_results
from orchestrator.artifacts.run_info import RunInfo
from orchestrator.artifacts.slices import write_slices
from orchestrator.artifacts.summary import DEFAULT_RERUN, render_summary
from orchestrator.util import test_id_for


@dataclass(frozen=True)
class FinishedRun:
    folder: Path
    summary: Path  # summary.md, links relative to the folder
    report: Path  # index.html
    github_summary: str  # summary.md's text for $GITHUB_STEP_SUMMARY (links: artifact_url)
    data: RunData


def finish_run(
    artifacts: Artifacts,
    run: RunInfo,
    logs_dir: Path | None = None,
    *,
    artifact_url: str | None = None,
    rerun_prefix: str = DEFAULT_RERUN,
) -> FinishedRun:
    """Call once when a run ends. `logs_dir` is where the stack's logs are (default: the
    folder's own logs/; a pytest session against a warm stack passes that stack's)."""
    artifacts.root.mkdir(parents=True, exist_ok=True)
    logs = artifacts.logs_dir if logs_dir is None else logs_dir
    # A last pass over files others wrote (a non-pytest CMD's own files); the logs are
    # skipped: the harvester redacts every line it writes.
    artifacts.redact_files(skip=logs)
    artifacts.write_json(layout.RUN_FILE, run.to_json())
    write_slices(artifacts, failed_test_folders(artifacts), logs, run.run_id)
    data = load_run(artifacts.root, info=run)
    if logs != artifacts.logs_dir and logs.is_dir():  # a warm stack's logs, elsewhere
        data = replace(data, logs=os.path.relpath(logs, artifacts.root))
    summary = artifacts.write_text(layout.SUMMARY_FILE, render_summary(data, "", rerun_prefix))
    report = artifacts.write_text(
        layout.REPORT_FILE,
        render_report(data, rerun_prefix=rerun_prefix, folder_hint=str(artifacts.root)),
    )
    github = artifacts.redactor(render_summary(data, artifact_url, rerun_prefix))
    return FinishedRun(artifacts.root, summary, report, github, data)


def failed_test_folders(artifacts: Artifacts) -> dict[str, Path]:
    """test id -> tests/<slug>/ of every failed test (results.jsonl, and test.json markers
    of tests the results file does not know)."""
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
    return folders


def _json_object(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
