"""How the report and summary show quarantined tests (`orchestrator.quarantine`): apart from
the failures that count, each with its outcome, its evidence when it failed or was flaky, and
whether it is ready to leave quarantine (passed this run and its last runs of the history)."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from orchestrator.artifacts.results import RunData, TestResult
from orchestrator.artifacts.text import badge, code_span, shorten
from orchestrator.quarantine import READY_TEXT
from orchestrator.util import test_slug

QUARANTINE_CSS = """
.s-quarantined{background:#6639ba}.failure.o-quarantined{border-left-color:#6639ba}
.ready{color:var(--pass);font-weight:600}
#quarantined table td.n{font-family:var(--mono);word-break:break-all}
#quarantined table td.n div{font-family:system-ui,sans-serif;word-break:normal}
.facts b{overflow-wrap:anywhere}
"""
SUMMARY_LINE = 160


def quarantine_badge(test: TestResult) -> str:
    """The `quarantined` chip beside a quarantined test's outcome (nothing for any other)."""
    return f" {badge('quarantined')}" if test.quarantined else ""


def quarantine_section(
    data: RunData, render_failure: Callable[[TestResult], str], ready_runs: int
) -> str:
    """The report's "Quarantined" section: every quarantined test (outcome, ready to leave),
    then the evidence of those that failed or were flaky (`render_failure`)."""
    tests = data.quarantined
    if not tests:
        return ""
    ready = set(data.ready_to_leave)
    rows = []
    for test in tests:
        name = escape(test.nodeid)
        if test.has_evidence:
            name = f'<a href="#t-{escape(test_slug(test.nodeid))}">{name}</a>'
        if test.nodeid in ready:
            note = (
                f'<div class="ready" title="passed this run and its last {ready_runs} runs">'
                f"{READY_TEXT}</div>"
            )
        else:
            message = shorten(test.message, SUMMARY_LINE)
            note = f'<div class="hint">{escape(message)}</div>' if message else ""
        rows.append(f'<tr><td>{badge(test.outcome)}</td><td class="n">{name}{note}</td></tr>')
    failed = sum(1 for test in tests if test.has_evidence)
    return (
        f'<section id="quarantined"><h2>Quarantined ({len(tests)})</h2>'
        '<p class="hint">These tests ran and kept their evidence, but do not count in the '
        f"verdict ({failed} of them failed or were flaky). A test that passed this run and "
        f"its last {ready_runs} runs is {READY_TEXT}.</p>"
        "<table><thead><tr><th>status</th><th>test</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        + "".join(render_failure(test) for test in tests if test.has_evidence)
        + "</section>"
    )


def quarantine_markdown(data: RunData, link_base: str | None, ready_runs: int) -> list[str]:
    """summary.md's lines for the quarantined tests (none when there are none)."""
    tests = data.quarantined
    if not tests:
        return []
    ready = set(data.ready_to_leave)
    lines = ["", f"## Quarantined ({len(tests)}): ran, not counted in the verdict", ""]
    for test in tests:
        line = f"- {code_span(test.nodeid)}: {test.outcome}"
        if test.has_evidence:
            reason = test.message or next((a.message for a in test.attempts), "")
            line += f" · {code_span(shorten(reason, SUMMARY_LINE))}" if reason else ""
            if test.evidence is not None and link_base is not None:
                base = link_base.rstrip("/") + "/" if link_base else ""
                folder = test.evidence.folder + "/"
                line += f" ([{folder}]({base}{folder}))"
        if test.nodeid in ready:
            line += f" · **{READY_TEXT}** (passed its last {ready_runs} runs)"
        lines.append(line)
    return lines
