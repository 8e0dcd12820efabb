"""index.html's content without a browser: the timeline's entries and order, escaping."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from orchestrator import util  # not its test_* names: pytest would collect them
from orchestrator.artifacts import Artifacts, RunInfo, finish_run, load_run, render_report
from orchestrator.artifacts.failure_text import code_frame
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


PW_MESSAGE = (
    "AssertionError: Locator expected to have text 'bye'\nActual value: hello \nCall log:\n"
    '  - Expect "to_have_text" locator("#a") with timeout 500ms\n'
    '  - waiting for locator("#a")'
)
PW_LONGREPR = (
    "page = <Page url='about:blank'>\n\n    def test_pw(page):\n"
    '        page.set_content("<p id=a>hello</p>")\n'
    '>       expect(page.locator("#a")).to_have_text("bye", timeout=500)\n'
    + "".join(f"E       {line}\n" for line in PW_MESSAGE.splitlines())
    + "\ntest_ex.py:16: AssertionError"
)


def _red_run(tmp_path: Path, **entry: object) -> Artifacts:
    artifacts = Artifacts(tmp_path, Redactor()).create()
    line = {"nodeid": NODEID, "outcome": "failed", "phase": "call", **entry}
    artifacts.append_line("results.jsonl", json.dumps(line))
    folder = artifacts.test_dir(NODEID)
    folder.mkdir(parents=True)
    (folder / "test.json").write_text(json.dumps(line))
    return artifacts


def test_the_error_shows_once_in_its_box_above_the_code_frame(tmp_path: Path) -> None:
    _red_run(tmp_path, message=PW_MESSAGE, longrepr=PW_LONGREPR, crash="test_ex.py:16",
             failed_at="2026-01-01T00:00:02.000Z")  # fmt: skip

    card = _card(render_report(load_run(tmp_path, info=RunInfo("r", "local", "failed"))))

    assert card.count("Locator expected to have text &#x27;bye&#x27;") == 1
    assert card.count("waiting for locator(&quot;#a&quot;)") == 1
    box = card.index('<pre class="message">')
    frame = card.index('<pre class="longrepr">')
    assert box < frame
    assert "expect(page.locator(&quot;#a&quot;)).to_have_text(&quot;bye&quot;" in card[frame:]
    assert "test_ex.py:16: AssertionError" in card[frame:]


def _card(page: str) -> str:
    """The first failure card of a report page."""
    return page[page.index('<article class="failure') : page.index("</article>")]


def test_a_code_frame_that_says_more_than_the_message_is_kept_whole() -> None:
    longrepr = ">       assert f() == 2\nE       assert 1 == 2\nE        +  where 1 = f()\n"

    assert code_frame(longrepr, "assert 1 == 2") == longrepr
    assert code_frame(longrepr, "") == longrepr
    assert code_frame(">       raise X\nE       X: boom\n\nx.py:1: X", "X: boom") == (
        ">       raise X\n\nx.py:1: X"
    )


def test_the_header_shows_a_human_start_and_the_duration_pytest_printed(tmp_path: Path) -> None:
    _red_run(tmp_path, duration=40.0)
    (tmp_path / "pytest-session.json").write_text('{"seconds": 2.349}')
    run = RunInfo("r", "local", "failed", started_at="2026-12-06T04:36:17.250Z",
                  finished_at="2026-12-06T04:36:29.750Z")  # fmt: skip

    finish_run(Artifacts(tmp_path, Redactor()), run)

    page = (tmp_path / "index.html").read_text()
    header = page[page.index("<header") : page.index("</header>")]
    assert "started <b>2026-12-06 04:36:17 UTC</b>" in header
    assert "duration <b>2.35s</b>" in header  # as pytest's "1 failed in 2.35s"
    assert "with stack <b>12.50s</b>" in header
    assert "40.0" not in header  # the tests' own summed time is not the duration
    assert json.loads((tmp_path / "run.json").read_text())["test_seconds"] == 2.349


def test_without_pytests_time_the_header_says_it_shows_the_tests_own_time(tmp_path: Path) -> None:
    _red_run(tmp_path, duration=75.5)

    page = render_report(load_run(tmp_path, info=RunInfo("r", "local", "failed")))

    assert "test time <b>75.50s (0:01:15)</b>" in page
    assert "with stack" not in page


def test_the_timeline_has_the_tests_steps_its_failure_and_its_end_among_the_records(
    tmp_path: Path,
) -> None:
    artifacts = _red_run(tmp_path, message="boom", crash="e2e/test_x.py:9",
                         started_at="2026-01-01T00:00:00.500Z",
                         failed_at="2026-01-01T00:00:03.000Z",
                         finished_at="2026-01-01T00:00:03.400Z")  # fmt: skip
    folder = artifacts.test_dir(NODEID)
    wall = 1767225600000  # 2026-01-01T00:00:00Z in ms
    events = [
        {"type": "context-options", "wallTime": wall, "monotonicTime": 100.0},
        {"type": "before", "callId": "c1", "startTime": 1100.0, "class": "Frame",
         "method": "goto", "params": {"url": "/send"}},
        {"type": "after", "callId": "c1", "endTime": 1300.0},
        {"type": "before", "callId": "c2", "startTime": 2100.0, "class": "Frame",
         "method": "expect", "title": 'Expect "to_have_attribute"',
         "params": {"selector": "#status", "expectedText": [{"string": "COMPLETED"}]}},
        {"type": "log", "callId": "c2", "time": 2800.0, "message": 'unexpected value "FAILED"'},
        {"type": "after", "callId": "c2", "endTime": 2900.0, "error": {"message": "Expect failed"}},
    ]  # fmt: skip
    with zipfile.ZipFile(folder / "trace.zip", "w") as archive:
        archive.writestr("trace.trace", "\n".join(json.dumps(e) for e in events))
        stacks = {"files": ["/src/e2e/test_x.py"], "stacks": [["c1", [[0, 7, 4, "test_x"]]]]}
        archive.writestr("trace.stacks", json.dumps(stacks))
    (folder / "backend.jsonl").write_text(
        json.dumps({"timestamp": "2026-01-01T00:00:01.500Z", "message": "sent", "level": "INFO"})
    )

    test = load_run(tmp_path, info=RunInfo("r", "local", "failed")).failures[0]

    assert test.evidence is not None
    assert [(e.at, e.source, e.level, e.text) for e in test.evidence.timeline] == [
        ("2026-01-01T00:00:00.500Z", "test", "info", "test started"),
        ("2026-01-01T00:00:01.000Z", "test", "step", "goto /send · test_x.py:7 (200 ms)"),
        ("2026-01-01T00:00:01.500Z", "backend", "INFO", "sent"),
        ("2026-01-01T00:00:02.000Z", "test", "error",
         'Expect "to_have_attribute" #status "COMPLETED" (800 ms) ✗ Expect failed — '
         'unexpected value "FAILED"'),
        ("2026-01-01T00:00:03.000Z", "test", "error", "✗ failed in call at e2e/test_x.py:9"),
        ("2026-01-01T00:00:03.400Z", "test", "info", "test finished"),
    ]  # fmt: skip
    card = _card(render_report(load_run(tmp_path, info=RunInfo("r", "local", "failed"))))
    assert card.count("boom") == 1  # the error once: in the card's box, not the timeline
