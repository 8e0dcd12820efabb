"""report_history: the run history drawn in index.html (earlier outcomes, label chips, the
flakiest and slowest-growing tables), and a page without a history left as it was."""

from __future__ import annotations

import re
from pathlib import Path

from orchestrator.artifacts.report import render_report
from orchestrator.artifacts.results import RunData, TestResult
from orchestrator.artifacts.run_history import RunHistory
from orchestrator.artifacts.run_info import RunInfo
from orchestrator.history import HistoryOutcome, HistoryRun


def data() -> RunData:
    info = RunInfo(run_id="now", provider="local", verdict="failed")
    tests = [
        TestResult("t.py::test_new", "failed", message="boom"),
        TestResult("t.py::test_old", "failed", message="still"),
        TestResult("t.py::test_ok", "passed"),
    ]
    return RunData(Path("/tmp/run"), info, tests)


def history() -> RunHistory:
    runs = [
        HistoryRun(
            f"<r{k}>",
            f"2026-12-0{k + 1}T10:2{k}:00Z",
            "main",
            None,
            {
                "t.py::test_new": HistoryOutcome("passed", 1.0),
                "t.py::test_old": HistoryOutcome("failed", 1.0),
            },
        )
        for k in range(3)
    ]
    return RunHistory(
        Path("/h"), runs, {"t.py::test_new": "new", "t.py::test_old": "failing before"}
    )


def test_each_failure_gets_its_label_and_every_test_its_earlier_outcomes() -> None:
    page = render_report(data(), history=history())

    chips = re.findall(r'<span class="label l-([\w-]+)" title="([^"]+)">([^<]+)</span>', page)
    assert [(c, text) for c, _, text in chips] == [
        ("new", "new"),
        ("failing-before", "failing before"),
    ]
    assert chips[1][1].startswith("failing before: it failed in the previous run")
    squares = re.findall(r'<i class="h-(\w+)" title="([^"]+)"></i>', page)
    assert squares[:3] == [
        ("passed", "passed · run &lt;r0&gt; · 2026-12-01 10:20 UTC"),  # newest first, escaped
        ("passed", "passed · run &lt;r1&gt; · 2026-12-02 10:21 UTC"),
        ("passed", "passed · run &lt;r2&gt; · 2026-12-03 10:22 UTC"),
    ]
    assert "<th>earlier runs</th>" in page
    assert '<td class="h"><span class="hint">no earlier run</span></td>' in page  # test_ok
    section = page.split('<section id="history">', 1)[1].split("</section>", 1)[0]
    assert "3 earlier run(s) since 2026-12-03 10:22 UTC in <code>/h</code>" in section
    assert "No test flipped in the history." not in section  # test_new flipped now
    assert re.search(r'<td class="n">t.py::test_new</td><td class="num">1</td>', section)
    assert "No test got slower" in section


def test_without_a_history_the_page_has_none_of_it() -> None:
    page = render_report(data())
    assert "earlier runs" not in page and 'id="history"' not in page
    assert 'class="label' not in page and '<i class="h-' not in page
