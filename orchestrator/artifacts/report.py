"""index.html: one self-contained page (inline CSS and JS, no network) that explains a run.

Header with verdict, app, provider, run id, start (UTC), pytest's duration and stack
timings; failed tests first, each with its error once (the message, then the code frame),
screenshot, a timeline (the test's own steps from its trace, browser console, access records
and every service's records in time order, linked by correlation id), SSE transcripts, the
rerun command and the trace; then every test with status, duration and file:line, filtered
by status or searched.
Images and traces are relative links, so the page works from file:// and from a downloaded
CI artifact; served by `python -m orchestrator report`, "View trace" opens the trace viewer.
"""

from __future__ import annotations

import hashlib
import json
import re
from html import escape
from pathlib import Path

from orchestrator.artifacts import report_history
from orchestrator.artifacts.failure_text import (
    code_frame,
    human_time,
    session_duration,
    wall_seconds,
)
from orchestrator.artifacts.repeats import REPEATS_CSS, group_repeats, repeats_section
from orchestrator.artifacts.report_quarantine import (
    QUARANTINE_CSS,
    quarantine_badge,
    quarantine_section,
)
from orchestrator.artifacts.results import OUTCOMES, RunData, TestResult, Transcript
from orchestrator.artifacts.run_history import RunHistory
from orchestrator.artifacts.summary import DEFAULT_RERUN
from orchestrator.artifacts.text import badge, rerun_command
from orchestrator.artifacts.timeline import TEST_SOURCE, TimelineEntry
from orchestrator.quarantine import READY_RUNS
from orchestrator.util import test_slug

TRACE_ROUTE = "__view-trace"  # report_server opens the trace viewer for GET /<route>/<path>
SERVER_PROBE = "__report-server"  # report_server answers 200 here; a static server does not
REPORT_COMMAND = "python -m orchestrator report"
TRANSCRIPT_SHOWN = 200  # entries of one SSE transcript shown inline
TIMELINE_SHOWN = 1000  # entries of one test's timeline shown inline (the rest: its files)

_CSS = """
:root{--fg:#1d2330;--muted:#5b6475;--line:#dde1e8;--bg:#f6f7f9;--card:#fff;
--pass:#1a7f37;--fail:#cf222e;--err:#9a3412;--skip:#6e7781;--mono:ui-monospace,SFMono-Regular,
Menlo,Consolas,monospace}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;
color:var(--fg);background:var(--bg)}
header{padding:18px 28px;background:var(--card);border-bottom:4px solid var(--skip)}
header.v-passed{border-color:var(--pass)}header.v-failed{border-color:var(--fail)}
header.v-error{border-color:var(--err)}
h1{margin:0 0 8px;font-size:22px}h2{font-size:18px;margin:26px 0 10px}
h3{margin:0 0 4px;font-size:15px;word-break:break-all}h4{margin:16px 0 6px;font-size:13px;
text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
main{padding:0 28px 40px;max-width:1400px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px;
font-weight:600;background:var(--skip);text-transform:uppercase;vertical-align:middle}
.s-passed,.s-xpassed{background:var(--pass)}.s-failed{background:var(--fail)}
.s-error{background:var(--err)}.s-skipped,.s-xfailed{background:var(--skip)}
.s-flaky{background:#9a6700}
.attempts{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:10px}
.attempt{border:1px solid var(--line);border-radius:6px;padding:8px;min-width:0}
.attempt img{max-width:100%}
h1 .badge{font-size:15px;padding:3px 12px}
.facts{display:flex;flex-wrap:wrap;gap:6px 22px;margin:4px 0;color:var(--muted)}
.facts b{color:var(--fg);font-weight:600}code,pre,.mono{font-family:var(--mono);font-size:12.5px}
.chips{display:flex;flex-wrap:wrap;gap:6px;margin-top:8px}
.chip{background:var(--bg);border:1px solid var(--line);border-radius:12px;padding:1px 9px;
font-size:12px}
pre{background:#f3f4f6;border:1px solid var(--line);border-radius:6px;padding:10px 12px;
margin:6px 0;overflow:auto;white-space:pre-wrap;word-break:break-word;max-height:480px}
pre.message{background:#fff5f5;border-color:#f5c2c7;color:#8a1c24}
.failure{background:var(--card);border:1px solid var(--line);border-left:4px solid var(--fail);
border-radius:8px;padding:16px 18px;margin:14px 0}
.failure.o-error{border-left-color:var(--err)}.failure.o-flaky{border-left-color:#9a6700}
.where{color:var(--muted);margin:0 0 8px}
.shot{margin:10px 0}.shot img{max-width:100%;max-height:520px;border:1px solid var(--line);
border-radius:6px}
.actions{display:flex;flex-wrap:wrap;gap:10px 24px;align-items:center;margin:10px 0}
.cmd{display:flex;gap:6px;align-items:center}.cmd code{background:#eef1f5;padding:3px 8px;
border-radius:4px;word-break:break-all}
button{font:inherit;font-size:12px;padding:3px 10px;border:1px solid var(--line);
border-radius:5px;background:var(--card);cursor:pointer}button:hover{background:var(--bg)}
button.on{background:var(--fg);color:#fff;border-color:var(--fg)}
table{border-collapse:collapse;width:100%;background:var(--card)}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--muted);font-weight:600}
.timeline td{font-size:12.5px}.timeline .t{white-space:nowrap;font-family:var(--mono);
color:var(--muted)}.timeline .text{font-family:var(--mono);overflow-wrap:anywhere}
.src{white-space:nowrap;font-weight:600}.src-browser{color:#6f42c1}.src-access{color:#0550ae}
.src-test{color:#0e7490}.timeline tr.lv-step td.text{color:#1f2328}
.timeline tr.lv-error td{background:#fff5f5}.timeline tr.lv-error td.text{color:#8a1c24}
pre.longrepr{overflow-wrap:anywhere}
.lvl-WARNING,.lvl-warning{color:#9a6700}.lvl-ERROR,.lvl-error,.lvl-CRITICAL{color:var(--fail)}
.cid{font-family:var(--mono);font-size:11px;border-radius:8px;padding:0 6px;cursor:pointer;
border:1px solid transparent;white-space:nowrap}
tr.dim{opacity:.28}tr.hit td{background:#fff8c5}
.filters{display:flex;flex-wrap:wrap;gap:6px;align-items:center;margin:8px 0}
.filters input{flex:1;min-width:220px;padding:5px 9px;border:1px solid var(--line);
border-radius:5px;font:inherit}
#tests td.n{font-family:var(--mono);word-break:break-all}#tests td.d{white-space:nowrap;
text-align:right}#tests td.loc{font-family:var(--mono);color:var(--muted);white-space:nowrap}
.hint{color:var(--muted);font-size:12.5px}.files a{margin-right:12px;font-family:var(--mono);
font-size:12px}.empty{color:var(--muted);font-style:italic}
/* narrow screens: the page wraps, nothing scrolls sideways */
@media (max-width:640px){header{padding:14px 12px}main{padding:0 12px 32px}
.failure{padding:12px 10px}.facts{gap:4px 14px}
.timeline,.timeline tbody{display:block}.timeline thead{display:none}
.timeline tr{display:flex;flex-wrap:wrap;align-items:baseline;gap:0 8px;padding:5px 2px;
border-bottom:1px solid var(--line)}.timeline td{border:0;padding:0}
.timeline td.text{flex:1 1 100%;min-width:0}
#tests,#tests tbody{display:block}#tests thead{display:none}
#tests tr{display:grid;grid-template-columns:auto 1fr auto auto;align-items:center;gap:3px 10px;
padding:6px 2px;border-bottom:1px solid var(--line)}#tests tr[hidden]{display:none}
#tests td{border:0;padding:0}#tests td.n{grid-column:1/-1;order:-1}
#tests td.loc{overflow:hidden;text-overflow:ellipsis}}
"""

_JS = """
(function(){
const rows=[...document.querySelectorAll('#tests tbody tr')];
const search=document.getElementById('search');let status='all';
function apply(){const q=search.value.trim().toLowerCase();let shown=0;
 rows.forEach(r=>{const ok=(status==='all'||r.dataset.status===status||
  (status==='quarantined'&&!!r.dataset.quarantined))&&
  (!q||r.dataset.search.includes(q));r.hidden=!ok;shown+=ok;});
 document.getElementById('shown').textContent=shown+' of '+rows.length+' shown';}
document.querySelectorAll('.filters button').forEach(b=>b.addEventListener('click',()=>{
 status=b.dataset.status;document.querySelectorAll('.filters button').forEach(
 x=>x.classList.toggle('on',x===b));apply();}));
search.addEventListener('input',apply);apply();
document.querySelectorAll('button.copy').forEach(b=>b.addEventListener('click',()=>{
 const text=b.previousElementSibling.textContent;
 const done=()=>{b.textContent='copied';setTimeout(()=>b.textContent='copy',1500);};
 if(navigator.clipboard&&window.isSecureContext){navigator.clipboard.writeText(text).then(done);}
 else{const r=document.createRange();r.selectNodeContents(b.previousElementSibling);
  const s=getSelection();s.removeAllRanges();s.addRange(r);document.execCommand('copy');done();}
}));
document.querySelectorAll('.cid').forEach(c=>c.addEventListener('click',()=>{
 const table=c.closest('table');const id=c.dataset.cid;const on=table.dataset.cid!==id;
 table.dataset.cid=on?id:'';table.querySelectorAll('tbody tr').forEach(r=>{
  r.classList.toggle('dim',on&&r.dataset.cid!==id);r.classList.toggle('hit',on&&r.dataset.cid===id);});
}));
if(location.protocol.startsWith('http')){fetch('PROBE').then(r=>{if(!r.ok)return;
 document.querySelectorAll('a.trace').forEach(a=>{a.href='ROUTE/'+a.dataset.trace;
  a.target='_blank';a.textContent='View trace';});
 document.querySelectorAll('.trace-hint').forEach(h=>h.hidden=true);}).catch(()=>{});}
})();
"""


def render_report(
    data: RunData,
    *,
    rerun_prefix: str = DEFAULT_RERUN,
    folder_hint: str | None = None,
    history: RunHistory | None = None,
) -> str:
    """The page for `data`; `folder_hint` is how the "View trace" advice names the folder
    (default: the run folder's path); `history`: the runs before it (report_history)."""
    info = data.info
    hint = folder_hint or str(data.root)
    title = f"{info.verdict.upper()} · {info.app} on {info.provider} · run {info.run_id}"
    failures = data.failures
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}{report_history.CSS}{QUARANTINE_CSS}"
        f"{REPEATS_CSS}</style></head><body>",
        _header(data),
        "<main>",
    ]
    if failures:
        parts.append(f'<section id="failures"><h2>Failures ({len(failures)})</h2>')
        parts += [_failure(test, rerun_prefix, hint, history) for test in failures]
        parts.append("</section>")
    if data.flaky:
        parts.append(
            f'<section id="flaky"><h2>Flaky ({len(data.flaky)}): failed, then passed on retry</h2>'
        )
        parts += [_failure(test, rerun_prefix, hint, history) for test in data.flaky]
        parts.append("</section>")
    parts.append(report_history.history_section(data, history))
    parts.append(
        quarantine_section(
            data, lambda test: _failure(test, rerun_prefix, hint, history), READY_RUNS
        )
    )
    anchors = {test.nodeid for test in data.tests if test.has_evidence}
    parts.append(repeats_section(group_repeats(data.tests), anchors))
    parts += [_tests_table(data, history), "</main>"]
    script = _JS.replace("PROBE", SERVER_PROBE).replace("ROUTE", TRACE_ROUTE)
    parts.append(f"<script>{script}</script></body></html>\n")
    return "\n".join(parts)


def _header(data: RunData) -> str:
    info, totals = data.info, data.totals
    verdict = info.verdict
    facts = [("run", info.run_id), ("provider", info.provider), ("app", info.app)]
    if info.command:
        facts.append(("command", " ".join(info.command)))
    if info.command_status is not None:
        facts.append(("exit status", str(info.command_status)))
    started = human_time(info.started_at)
    if started:
        facts.append(("started", started))
    counts = " · ".join(
        f"{totals[o]} {o}" for o in OUTCOMES if totals[o] or o in ("passed", "failed")
    )
    if data.quarantined:
        counts += f" · {len(data.quarantined)} quarantined"
    facts.append(("tests", f"{totals.tests} — {counts}"))
    fact_html = "".join(f"<span>{escape(k)} <b>{escape(v)}</b></span>" for k, v in facts)
    fact_html += _durations(data)
    if data.logs is not None:
        logs = escape(data.logs.rstrip("/") + "/")
        fact_html += f'<span>logs <a href="{logs}"><b>{logs}</b></a></span>'

    chips = "".join(
        f'<span class="chip">{escape(name)} <b>{seconds:.2f}s</b></span>'
        for name, seconds in info.timings.items()
    )
    error = (
        f'<h4>Stack error</h4><pre class="message">{escape(info.error.strip())}</pre>'
        if info.error
        else ""
    )
    if info.incomplete:
        lost = "\n".join(f"{name}: {why}" for name, why in info.incomplete.items())
        error += f'<h4>Evidence incomplete</h4><pre class="message">{escape(lost)}</pre>'
    return (
        f'<header class="v-{escape(verdict)}"><h1>{badge(verdict)}'
        f" {escape(info.app)} on {escape(info.provider)}</h1>"
        f'<div class="facts">{fact_html}</div>'
        + (f'<div class="chips" title="stack timings">{chips}</div>' if chips else "")
        + error
        + "</header>"
    )


def _durations(data: RunData) -> str:
    """pytest's own session time (the "in N.NNs" it printed), else the tests' summed time;
    and the run's wall time with the stack's start and stop, labelled as such."""
    info = data.info
    if info.test_seconds is not None:
        html = (
            '<span title="the session time pytest printed (&quot;in N.NNs&quot;)">duration '
            f"<b>{escape(session_duration(info.test_seconds))}</b></span>"
        )
    else:
        html = (
            "<span title=\"pytest's session time is not known: the tests' own times added up\">"
            f"test time <b>{escape(session_duration(data.totals.seconds))}</b></span>"
        )
    wall = wall_seconds(info.started_at, info.finished_at)
    if wall is not None:
        html += (
            '<span title="from the start of the stack to the end of the run">with stack '
            f"<b>{escape(session_duration(wall))}</b></span>"
        )
    return html


def _failure(
    test: TestResult, rerun_prefix: str, hint: str, history: RunHistory | None = None
) -> str:
    evidence = test.evidence
    where = " · ".join(
        x
        for x in (
            test.location and f"defined at {test.location}",
            test.crash and f"failed at {test.crash}",
            test.phase and f"in {test.phase}",
            f"{test.duration:.2f}s",
        )
        if x
    )
    html = [
        f'<article class="failure o-{escape(test.outcome)}'
        f'{" o-quarantined" if test.quarantined else ""}" id="{_anchor(test)}">',
        f"<h3>{badge(test.outcome)} {escape(test.nodeid)}{quarantine_badge(test)}</h3>",
        f'<p class="where">{escape(where)}</p>',
        report_history.failure_history(history, test.nodeid),
    ]
    if test.attempts:
        html.append(_attempts(test, hint))
    # The error once: its message in the box, then the code frame without the lines that
    # repeat it.
    if test.message:
        html.append(f'<pre class="message">{escape(test.message)}</pre>')
    frame = code_frame(test.longrepr, test.message) if test.longrepr else ""
    if frame.strip():
        html.append(
            "<details open><summary>Code frame</summary>"
            f'<pre class="longrepr">{escape(frame)}</pre></details>'
        )
    if evidence is not None:
        for shot in evidence.screenshots:
            html.append(
                f'<figure class="shot"><a href="{escape(shot)}"><img src="{escape(shot)}" '
                f'alt="screenshot {escape(Path(shot).name)}"></a></figure>'
            )
    command = rerun_command(rerun_prefix, test.nodeid)
    actions = [
        f'<span class="cmd">rerun <code class="rerun">{escape(command)}</code>'
        '<button class="copy" type="button">copy</button></span>'
    ]
    actions += [_trace_link(trace, hint) for trace in (evidence.traces if evidence else [])]
    html.append(f'<div class="actions">{"".join(actions)}</div>')
    if evidence is not None and (evidence.files or test.failed):
        html.append(_timeline(evidence.timeline))
        if evidence.transcripts:
            html.append(f"<h4>SSE transcripts ({len(evidence.transcripts)})</h4>")
            html += [_transcript(t) for t in evidence.transcripts]
        links = "".join(f'<a href="{escape(f)}">{escape(Path(f).name)}</a>' for f in evidence.files)
        html.append(f'<h4>Files in {escape(evidence.folder)}/</h4><div class="files">{links}</div>')
    html.append("</article>")
    return "\n".join(html)


def _trace_link(trace: str, hint: str) -> str:
    return (
        f'<span><a class="trace" data-trace="{escape(trace)}" href="{escape(trace)}">'
        f"{escape(Path(trace).name)}</a> "
        f'<span class="trace-hint hint">View trace: <code>{escape(REPORT_COMMAND)} '
        f"{escape(hint)}</code></span></span>"
    )


def _attempts(test: TestResult, hint: str) -> str:
    """Each attempt side by side: the failed ones' error, screenshot, trace and timeline
    (folded), then the last one's outcome."""
    cards = []
    for attempt in test.attempts:
        shots = attempt.evidence.screenshots if attempt.evidence else []
        images = "".join(
            f'<a href="{escape(shot)}"><img src="{escape(shot)}" alt="screenshot of attempt '
            f'{attempt.number}"></a>'
            for shot in shots
        )
        files = ""
        if attempt.evidence is not None and attempt.evidence.files:
            links = "".join(
                f'<a href="{escape(f)}">{escape(Path(f).name)}</a>' for f in attempt.evidence.files
            )
            traces = "".join(_trace_link(t, hint) for t in attempt.evidence.traces)
            files = f'<div class="files">{links}</div><div class="actions">{traces}</div>'
            files += (
                f"<details><summary>timeline ({len(attempt.evidence.timeline)})</summary>"
                f"{_timeline(attempt.evidence.timeline)}</details>"
            )
        cards.append(
            f'<div class="attempt"><h4>attempt {attempt.number} · {escape(attempt.outcome)}'
            f"{' in ' + escape(attempt.phase) if attempt.phase else ''}</h4>"
            f'<pre class="message">{escape(attempt.message or attempt.longrepr)}</pre>'
            f"{images}{files}</div>"
        )
    last = len(test.attempts) + 1
    final = "passed" if test.outcome == "flaky" else test.outcome
    cards.append(
        f'<div class="attempt"><h4>attempt {last} · {escape(final)}</h4>'
        + ("<p>below</p>" if test.failed else "")
        + "</div>"
    )
    return f'<h4>Attempts ({last})</h4><div class="attempts">{"".join(cards)}</div>'


def _timeline(entries: list[TimelineEntry]) -> str:
    if not entries:
        return (
            '<h4>Timeline</h4><p class="empty">No browser events or log records carry this '
            "test's id.</p>"
        )
    rows = []
    for entry in entries[:TIMELINE_SHOWN]:
        cid = entry.correlation_id or ""
        chip = (
            f'<span class="cid" data-cid="{escape(cid)}" style="background:{_color(cid)}" '
            f'title="correlation id {escape(cid)} (click to highlight)">{escape(cid[:8])}</span>'
            if cid
            else ""
        )
        rows.append(
            f'<tr data-cid="{escape(cid)}" class="lv-{escape(entry.level.lower())}">'
            f'<td class="t" title="{escape(entry.at or "")}">{escape(_clock(entry.at))}</td>'
            f"<td {_source_style(entry.source)}>{escape(entry.source)}</td>"
            f'<td class="lvl-{escape(entry.level)}">{escape(entry.level.lower())}</td>'
            f'<td class="text">{escape(entry.text)}</td><td>{chip}</td></tr>'
        )
    return (
        f"<h4>Timeline ({len(entries)})</h4>"
        '<p class="hint">The test\'s own steps come from its Playwright trace; a request the '
        "page made sits where it was sent; click a correlation id to highlight one request's "
        "records.</p>"
        '<table class="timeline"><thead><tr><th>time (UTC)</th><th>source</th><th>level</th>'
        "<th>what</th><th>correlation</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        + (
            f'<p class="hint">… {len(entries) - TIMELINE_SHOWN} more entries in the slice files '
            "below.</p>"
            if len(entries) > TIMELINE_SHOWN
            else ""
        )
    )


def _transcript(transcript: Transcript) -> str:
    shown = transcript.entries[:TRANSCRIPT_SHOWN]
    lines = []
    for entry in shown:
        details = json.dumps({k: v for k, v in entry.items() if k not in ("t", "kind")})
        lines.append(f"{entry.get('t', 0):9.4f}s {entry.get('kind', '?'):<8} {details}")
    more = len(transcript.entries) - len(shown)
    if more > 0:
        lines.append(f"… {more} more in {transcript.name}")
    return (
        f"<details><summary>{escape(transcript.name)} — {escape(transcript.url)} "
        f"({len(transcript.entries)} entries)</summary><pre>{escape(chr(10).join(lines))}</pre>"
        "</details>"
    )


def _tests_table(data: RunData, history: RunHistory | None = None) -> str:
    totals = data.totals
    buttons = [f'<button type="button" class="on" data-status="all">all {totals.tests}</button>']
    buttons += [
        f'<button type="button" data-status="{o}">{o} {totals[o]}</button>'
        for o in OUTCOMES
        if totals[o]
    ]
    if data.quarantined:
        buttons.append(
            f'<button type="button" data-status="quarantined">quarantined '
            f"{len(data.quarantined)}</button>"
        )
    rows = []
    for test in data.tests:
        name = escape(test.nodeid)
        if test.has_evidence:
            name = f'<a href="#{_anchor(test)}">{name}</a>'
        elif test.message:  # why it was skipped or expected to fail
            name += f'<div class="hint">{escape(test.message)}</div>'
        search = " ".join((test.nodeid, test.location or "", test.message[:200])).lower()
        rows.append(
            f'<tr data-status="{escape(test.outcome)}" data-search="{escape(search)}"'
            f"{' data-quarantined=1' if test.quarantined else ''}>"
            f"<td>{badge(test.outcome)}{quarantine_badge(test)}</td>"
            f'<td class="n">{name}</td><td class="loc">{escape(test.location or "")}</td>'
            f'<td class="d">{test.duration:.2f}s</td>'
            f"{report_history.table_cell(history, test.nodeid)}</tr>"
        )
    body = "".join(rows) or '<tr><td colspan="4" class="empty">No test results.</td></tr>'
    return (
        f'<section id="all-tests"><h2>All tests ({totals.tests})</h2>'
        f'<div class="filters">{"".join(buttons)}'
        '<input id="search" type="search" placeholder="Search node id, file or message">'
        '<span id="shown" class="hint"></span></div>'
        '<table id="tests"><thead><tr><th>status</th><th>test</th><th>file:line</th>'
        f"<th>duration</th>{report_history.table_header(history)}</tr></thead>"
        f"<tbody>{body}</tbody></table></section>"
    )


def _anchor(test: TestResult) -> str:
    return "t-" + escape(test_slug(test.nodeid))


def _clock(at: str | None) -> str:
    """`19:24:04.493` from an ISO stamp (the date is in the header)."""
    if not at:
        return "—"
    time_part = at.split("T", 1)[-1]
    return time_part.rstrip("Z").split("+", 1)[0]


def _source_style(source: str) -> str:
    """A source's cell attributes: browser and access have classes; each service a colour of
    its own, the same for all its instances (`worker-1`, `worker-2`)."""
    if source in ("browser", "access", TEST_SOURCE):
        return f'class="src src-{source}"'
    service = re.sub(r"-\d+$", "", source)
    hue = int(hashlib.sha1(service.encode()).hexdigest()[:4], 16) % 360
    return f'class="src" style="color:hsl({hue} 70% 30%)"'


def _color(correlation_id: str) -> str:
    hue = int(hashlib.sha1(correlation_id.encode()).hexdigest()[:4], 16) % 360
    return f"hsl({hue} 70% 88%)"
