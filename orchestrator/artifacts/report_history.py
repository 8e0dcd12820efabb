"""The run history in index.html: each test's earlier outcomes (small squares, newest first,
run id and date on hover), the label chip of each failure (new, failing before, known
flaky), and a run-level section with the flakiest and the slowest-growing tests.

`report.py` calls these when the run has a history (`RunHistory`); without one the page is
as before.
"""

from __future__ import annotations

from html import escape

from orchestrator.artifacts.results import RunData
from orchestrator.artifacts.run_history import HISTORY_SHOWN, RunHistory, history_run
from orchestrator.history import RECENT_RUNS, Label, flakiest, slowest_growing

TABLE_ROWS = 10  # tests listed in each run-level table

LABEL_HINTS: dict[Label, str] = {
    "new": "new: it passed in its recent runs (or was never seen before)",
    "failing before": "failing before: it failed in the previous run that ran it too",
    "known flaky": (
        f"known flaky: it was flaky, or flipped between passing and failing, in its last "
        f"{RECENT_RUNS} runs"
    ),
}

CSS = """
.strip{display:inline-flex;gap:2px;vertical-align:middle;flex-wrap:wrap}
.strip i{display:inline-block;width:10px;height:10px;border-radius:2px;background:var(--skip)}
.strip i.h-passed,.strip i.h-xpassed{background:var(--pass)}
.strip i.h-failed{background:var(--fail)}
.strip i.h-error{background:var(--err)}.strip i.h-flaky{background:#d4a72c}
.strip i.h-skipped,.strip i.h-xfailed{background:#c5cad3}
.history{display:flex;flex-wrap:wrap;gap:6px 10px;align-items:center;margin:0 0 8px;
color:var(--muted);font-size:12.5px}
.label{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;
border:1px solid;white-space:nowrap}
.l-new{background:#cf222e;border-color:#cf222e;color:#fff}
.l-failing-before{background:#fff1e5;border-color:#bc4c00;color:#953800}
.l-known-flaky{background:#fff8c5;border-color:#9a6700;color:#7d4e00}
#tests td.h{white-space:nowrap}
.hist-tables{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:14px}
.hist-tables table td.num{text-align:right;white-space:nowrap;font-family:var(--mono)}
.hist-tables td.n{font-family:var(--mono);word-break:break-all}
"""


def label_chip(history: RunHistory | None, nodeid: str) -> str:
    """The failure's label as a chip ("" when it has none)."""
    label = history.labels.get(nodeid) if history is not None else None
    if label is None:
        return ""
    return (
        f'<span class="label l-{label.replace(" ", "-")}" title="{escape(LABEL_HINTS[label])}">'
        f"{escape(label)}</span>"
    )


def outcome_strip(history: RunHistory, nodeid: str, n: int = HISTORY_SHOWN) -> str:
    """The test's last `n` earlier outcomes as squares, newest first."""
    squares = [
        f'<i class="h-{escape(outcome.outcome)}" title="{escape(outcome.outcome)} · run '
        f'{escape(run.run_id)} · {escape(_when(run.finished_at))}"></i>'
        for run, outcome in history.last(nodeid, n)
    ]
    if not squares:
        return '<span class="hint">no earlier run</span>'
    return (
        f'<span class="strip" title="earlier runs, newest first" data-runs="{len(squares)}">'
        f"{''.join(squares)}</span>"
    )


def failure_history(history: RunHistory | None, nodeid: str) -> str:
    """A failure card's line: its label chip and its earlier outcomes."""
    if history is None:
        return ""
    return (
        f'<p class="history">{label_chip(history, nodeid)}'
        f"<span>earlier runs, newest first</span>{outcome_strip(history, nodeid)}</p>"
    )


def table_header(history: RunHistory | None) -> str:
    """The all-tests table's column of earlier outcomes ("" without a history)."""
    return "<th>earlier runs</th>" if history is not None else ""


def table_cell(history: RunHistory | None, nodeid: str) -> str:
    """The test's cell in that column ("" without a history)."""
    return f'<td class="h">{outcome_strip(history, nodeid)}</td>' if history is not None else ""


def history_section(data: RunData, history: RunHistory | None) -> str:
    """The run-level tables: flakiest and slowest-growing tests, this run included."""
    if history is None:
        return ""
    info = data.info
    runs = [history_run(data.tests, info.run_id, info.finished_at), *history.runs]
    flaky_rows = "".join(
        f'<tr><td class="n">{escape(f.nodeid)}</td><td class="num">{f.flips}</td>'
        f'<td class="num">{f.flaky}</td><td class="num">{f.runs}</td></tr>'
        for f in flakiest(runs, TABLE_ROWS)
    )
    growth_rows = "".join(
        f'<tr><td class="n">{escape(g.nodeid)}</td><td class="num">{g.before_s:.2f}s</td>'
        f'<td class="num">{g.recent_s:.2f}s</td>'
        f'<td class="num">+{g.recent_s - g.before_s:.2f}s</td></tr>'
        for g in slowest_growing(runs, TABLE_ROWS)
    )
    since = f" since {_when(history.runs[-1].finished_at)}" if history.runs else ""
    none = '<tr><td colspan="4" class="empty">{}</td></tr>'
    return (
        '<section id="history"><h2>History</h2>'
        f'<p class="hint">{len(history.runs)} earlier run(s){escape(since)} in '
        f"<code>{escape(str(history.folder))}</code>. A failure is <b>new</b> when it passed "
        f"in its recent runs, <b>failing before</b> when the previous run that ran it failed "
        f"it too, <b>known flaky</b> when it was flaky or flipped in its last {RECENT_RUNS} "
        "runs.</p>"
        '<div class="hist-tables"><div><h4>Flakiest tests</h4><table class="flakiest">'
        "<thead><tr><th>test</th><th>flips</th><th>flaky</th><th>runs</th></tr></thead>"
        f"<tbody>{flaky_rows or none.format('No test flipped in the history.')}</tbody>"
        "</table></div>"
        '<div><h4>Slowest-growing tests</h4><table class="growing">'
        "<thead><tr><th>test</th><th>median before</th><th>median of last 5</th>"
        "<th>growth</th></tr></thead>"
        f"<tbody>{growth_rows or none.format('No test got slower (10 passing runs needed).')}"
        "</tbody></table></div></div></section>"
    )


def _when(finished_at: str) -> str:
    """`2026-12-06 04:36 UTC` from the history's `2026-12-06T04:36:17Z`."""
    return finished_at.replace("T", " ")[:16] + " UTC" if "T" in finished_at else finished_at
