"""index.html's content without a browser: the timeline's entries and order, escaping."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator import util  # not its test_* names: pytest would collect them
from orchestrator.artifacts import Artifacts, RunInfo, finish_run, load_run, render_report
from orchestrator.artifacts.timeline import console_entry, merge, record_entry
from orchestrator.redaction import Redactor

NODEID = "e2e/test_x.py::test_x[<b>bold</b>]"


def test_an_access_record_reads_as_the_request_it_was() -> None:
    record = {
        "timestamp": "2026-01-01T00:00:02.000Z",
        "level": "INFO",
        "logger": "backend.access",
        "message": "request",
        "correlation_id": "c-1",
        "extra": {"method": "POST", "path": "/api/commands", "status": 201, "duration_ms": 9},
    }

    entry = record_entry("backend", record)

    assert (entry.source, entry.text, entry.correlation_id) == (
        "access",
        "POST /api/commands → 201 (9 ms)",
        "c-1",
    )


def test_the_timeline_is_in_time_order_across_sources() -> None:
    late = record_entry("worker-1", {"timestamp": "2026-01-01T00:00:03.000Z", "message": "w"})
    early = console_entry(
        {"type": "info", "kind": "api_call", "method": "GET", "path": "/a", "status": 200,
         "at": "2026-01-01T00:00:01.000Z", "correlation_id": "c-2"}
    )  # fmt: skip
    middle = record_entry("backend", {"timestamp": "2026-01-01T00:00:02.000Z", "message": "b"})

    assert [e.source for e in merge([late, middle, early])] == ["browser", "backend", "worker-1"]
    assert early.text == "GET /a → 200"


def test_the_report_escapes_what_tests_and_logs_say(tmp_path: Path) -> None:
    artifacts = Artifacts(tmp_path, Redactor()).create()
    hostile = "</pre><script>alert('x')</script>"
    entry = {"nodeid": NODEID, "outcome": "failed", "message": hostile, "longrepr": hostile}
    artifacts.append_line("results.jsonl", json.dumps(entry))
    evidence = artifacts.test_dir(NODEID)
    evidence.mkdir(parents=True)
    log = {"timestamp": "2026-01-01T00:00:01.000Z", "message": hostile,
           "test_id": util.test_id_for(NODEID)}  # fmt: skip
    (artifacts.logs_dir / "backend.jsonl").write_text(json.dumps(log) + "\n")

    finish_run(artifacts, RunInfo(run_id="r", provider="local", verdict="failed"))

    page = (tmp_path / "index.html").read_text()
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # the page's own
    assert "test_x[&lt;b&gt;bold&lt;/b&gt;]" in page
    assert "https://" not in page and "http://" not in page  # nothing fetched from a network


def test_a_failed_test_without_evidence_says_its_timeline_is_empty(tmp_path: Path) -> None:
    artifacts = Artifacts(tmp_path, Redactor()).create()
    artifacts.append_line("results.jsonl", json.dumps({"nodeid": NODEID, "outcome": "error"}))

    data = load_run(tmp_path, info=RunInfo(run_id="r", provider="local", verdict="failed"))
    page = render_report(data)

    assert "No browser events or log records carry this test's id." in page
    assert data.failures[0].evidence is not None


def test_a_stack_that_did_not_start_shows_its_diagnosis(tmp_path: Path) -> None:
    artifacts = Artifacts(tmp_path, Redactor(["s3cret-pw"])).create()
    error = (
        "backend: waited for readyz 200; last answer 503\nlog tail: dsn postgresql://u:s3cret-pw@h"
    )
    run = RunInfo(run_id="r", provider="docker", verdict="error", error=error,
                  timings={"db ready": 0.5})  # fmt: skip

    finish_run(artifacts, run)

    page = (tmp_path / "index.html").read_text()
    assert '<header class="v-error">' in page
    assert "waited for readyz 200; last answer 503" in page
    assert "s3cret-pw" not in page
    assert "No test results." in page
