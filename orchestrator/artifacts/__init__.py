"""The artifacts folder of a run, and finishing it into evidence people can read.

Modules, one job each:
  layout    `Artifacts`: the folder's paths; writes every text file through the redactor
  run_info  `RunInfo`: what the session knows when a run ends (saved as run.json)
  results   `load_run(folder) -> RunData`: tests (results.jsonl, else junit.xml) and each
            failed test's evidence (screenshots, traces, timeline, SSE transcripts)
  slices    per-failed-test log slices: only this run's records of that test
  timeline  console events and log records merged in time order
  summary   `render_summary(data, link_base)`: summary.md / GitHub job summary
  report    `render_report(data)`: the self-contained index.html
  run_history  `RunHistory`: the runs before this one (orchestrator.history) and the labels
            of its failures; `record(...)` appends the run; report_history draws them
  finish    `finish_run(artifacts, run, logs_dir=None) -> FinishedRun`: all of it, once

Entry point for the session (once, when a run ends):
    finished = finish_run(Artifacts(folder, redactor), RunInfo(...), logs_dir=None)
    finished.summary, finished.report, finished.github_summary

For `merge` (combining shard folders): `load_run(shard)` each folder; paths inside
`RunData.tests[*].evidence` are relative to `RunData.root`, so prefix them with the shard's
sub-folder; build one `RunData(root, info, tests, ...)` and call `render_summary(data,
link_base)` and `render_report(data)`.
"""

from orchestrator.artifacts.finish import FinishedRun, failed_test_folders, finish_run
from orchestrator.artifacts.junit import JunitTotals, read_junit
from orchestrator.artifacts.layout import (
    FAILED_TEST_FILE,
    REPORT_FILE,
    RESULTS_FILE,
    RUN_FILE,
    SUMMARY_FILE,
    Artifacts,
)
from orchestrator.artifacts.report import render_report
from orchestrator.artifacts.results import Evidence, RunData, TestResult, Totals, load_run
from orchestrator.artifacts.run_info import RunInfo, Verdict
from orchestrator.artifacts.slices import belongs_to_run, collect_slices
from orchestrator.artifacts.summary import render_summary
from orchestrator.artifacts.timeline import TimelineEntry

__all__ = [
    "FAILED_TEST_FILE",
    "REPORT_FILE",
    "RESULTS_FILE",
    "RUN_FILE",
    "SUMMARY_FILE",
    "Artifacts",
    "Evidence",
    "FinishedRun",
    "JunitTotals",
    "RunData",
    "RunInfo",
    "TestResult",
    "TimelineEntry",
    "Totals",
    "Verdict",
    "belongs_to_run",
    "collect_slices",
    "failed_test_folders",
    "finish_run",
    "load_run",
    "read_junit",
    "render_report",
    "render_summary",
]
