"""summary.md: the run in a few lines, fit for GitHub's job summary.

Failure text sits in fenced blocks inside `<details>` (Markdown and HTML in it stay text);
node ids are the real pytest ids, pasteable back into pytest; links resolve against
`link_base` (`""`: relative, for the folder; a URL: the uploaded artifact; None: no links).
"""

from __future__ import annotations

import html
from collections.abc import Mapping

from orchestrator.artifacts.layout import JUNIT_FILE, LOGS_DIR, REPORT_FILE, STACK_FILE
from orchestrator.artifacts.repeats import group_repeats, repeats_markdown
from orchestrator.artifacts.report_quarantine import quarantine_markdown
from orchestrator.artifacts.results import RunData, TestResult
from orchestrator.artifacts.text import code_span, fence, keep_last_lines, rerun_command, shorten
from orchestrator.quarantine import READY_RUNS

DEFAULT_RERUN = "nox -s e2e --"
# An error (the stack did not start or stop, a service died, a signal) fails the run too.
HEADLINES = {"passed": "PASSED", "failed": "FAILED", "error": "FAILED (error)"}
MESSAGE_LIMIT = 12_000  # characters of one failure's text (whole lines); the rest: test.json
SUMMARY_LINE = 160  # characters of a failure's one-line reason
DETAILED_FAILURES = 30  # failures shown with their text; the rest by name (GitHub's 1 MiB cap)


def render_summary(
    data: RunData,
    link_base: str | None = "",
    rerun_prefix: str = DEFAULT_RERUN,
    labels: Mapping[str, str] | None = None,
) -> str:
    """`labels`: node id -> the failure's label from the run history (new, failing before,
    known flaky), shown next to it."""
    labels = labels or {}
    info, totals = data.info, data.totals
    lines = [f"# e2e run: {HEADLINES[info.verdict]} · {info.app} on {info.provider}", ""]
    timings = " · ".join(f"{name} {seconds:.2f}s" for name, seconds in info.timings.items())
    lines.append(f"- stack: **{info.provider}** (run `{info.run_id}`) {timings}".rstrip())
    if info.command_status is not None:
        lines.append(f"- command exit status: {info.command_status}")
    if data.tests:
        lines.append(
            f"- tests: {totals.tests} · passed {totals['passed']} · failed {totals['failed']}"
            f" · errors {totals['error']} · skipped {totals['skipped']}"
            + (f" · flaky {totals['flaky']}" if totals["flaky"] else "")
            + (f" · quarantined {len(data.quarantined)}" if data.quarantined else "")
            + f" · {totals.seconds:.1f}s"
        )
    if info.error:
        lines += ["", "## Stack error", "", fence(info.error.strip())]
    if info.incomplete:
        lines += ["", "## Evidence incomplete", ""]
        lines += [f"- {code_span(name)}: {why}" for name, why in info.incomplete.items()]
    if data.failures:
        lines += ["", f"## Failures ({len(data.failures)})", ""]
        for number, test in enumerate(data.failures, start=1):
            if number <= DETAILED_FAILURES:
                lines += _failure(number, test, link_base, rerun_prefix, labels.get(test.nodeid))
            else:
                label = f" · **{labels[test.nodeid]}**" if test.nodeid in labels else ""
                lines.append(f"{number}. {code_span(test.nodeid)} ({test.outcome}){label}")
    if data.flaky:
        lines += ["", f"## Flaky ({len(data.flaky)}): failed, then passed on retry", ""]
        for test in data.flaky:
            lines += _flaky(test, link_base)
    lines += quarantine_markdown(data, link_base, READY_RUNS)
    lines += repeats_markdown(group_repeats(data.tests))
    files = [(STACK_FILE, True), (JUNIT_FILE, data.has_junit), (REPORT_FILE, True)]
    listed = [_link(name, name, link_base) for name, present in files if present]
    if data.logs is not None:
        listed.insert(0, _link(f"{LOGS_DIR}/", data.logs.rstrip("/") + "/", link_base))
    lines += ["", "Files: " + " · ".join(listed)]
    return "\n".join(lines) + "\n"


def _failure(
    number: int, test: TestResult, link_base: str | None, rerun: str, label: str | None = None
) -> list[str]:
    where = f" ({test.outcome} in {test.phase})" if test.phase else f" ({test.outcome})"
    where += f" · **{label}**" if label else ""
    lines = [f"### {number}. {code_span(test.nodeid)}{where}", ""]
    if test.evidence is not None:
        folder = test.evidence.folder + "/"
        lines += [f"Evidence: {_link(folder, folder, link_base)}", ""]
    lines += [f"Rerun: {code_span(rerun_command(rerun, test.nodeid))}", ""]
    # The whole message, with as much of the code frame before it as fits.
    text = test.longrepr if test.message in test.longrepr else f"{test.longrepr}\n\n{test.message}"
    text, left = keep_last_lines(text.strip(), max(MESSAGE_LIMIT, len(test.message) + 500))
    if left:
        where = f"{test.evidence.folder}/test.json" if test.evidence else "results.jsonl"
        text = f"… {left} earlier line(s) in {where}\n{text}"
    reason = shorten(test.message or test.longrepr, SUMMARY_LINE) or "(no message)"
    lines += [
        "<details>",
        f"<summary>{html.escape(reason, quote=False)}</summary>",
        "",
        fence(text),
        "",
        "</details>",
        "",
    ]
    return lines


def _flaky(test: TestResult, link_base: str | None) -> list[str]:
    """One line per flaky test (its attempts), each failed attempt's reason and evidence."""
    lines = [f"- {code_span(test.nodeid)}: passed at attempt {len(test.attempts) + 1}"]
    for attempt in test.attempts:
        reason = shorten(attempt.message or attempt.longrepr, SUMMARY_LINE) or "(no message)"
        folder = attempt.evidence.folder + "/" if attempt.evidence else attempt.folder
        where = f" ({_link(folder, folder, link_base)})" if folder else ""
        lines.append(f"  - attempt {attempt.number}: {code_span(reason)}{where}")
    return lines


def _link(label: str, target: str, link_base: str | None) -> str:
    """`[label](base/target)`; the bare label in backticks when there is nowhere to link."""
    if link_base is None:
        return code_span(label)
    base = link_base.rstrip("/") + "/" if link_base else ""
    return f"[{label}]({base}{target})"
