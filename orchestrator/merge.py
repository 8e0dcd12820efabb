"""`merge --out DIR SHARD_DIR...`: one verdict from many shard folders (`orchestrator.cli.merge`).

Each SHARD_DIR is one run's artifacts folder (e.g. one CI matrix leg's downloaded artifact).
DIR gets a copy of every shard under `shards/<name>/` (so every link stays inside DIR; a
symbolic link is copied as a link when it points inside its shard, else left out, never
followed), one `junit.xml` holding every shard's suite, one `summary.md` and one
`index.html` listing every test with a link into the evidence of the shard that ran it. All
three count the same tests: those of the shards whose junit.xml could be read.

A CI leg re-run ("Re-run failed jobs" on GitHub: the same workflow run, a higher
`GITHUB_RUN_ATTEMPT`) is told apart by the `ci-leg.json` the workflow writes beside each
leg's artifacts (`python -m orchestrator github leg`): of two folders of one leg only the
latest attempt counts (the other is listed as left out), a leg of attempt 2 or later is shown
as re-run, and a folder that is itself a merge's output (`merge.json`, e.g. a previous
attempt's merged artifact) is left out, never merged as a shard. `merge.json` states the legs
and attempts used, the verdict and its reasons.

Exit status: 0 when every expected shard reported, no test ran in two shards, no test
failed (a quarantined test's failure does not count) and, with `fail-on-flaky`, none was
flaky; 1 otherwise (the summary, the page and stderr say why); 2 for bad arguments
(`--expect` below 1 or below the number of legs given). `--annotate` prints GitHub `::error`
lines for the failed tests (when GITHUB_ACTIONS=true), titled by their node ids.

With a history folder (`--history`, default the `history` setting) the merged run's failures
are labelled from the runs before it (new, failing before, known flaky: in summary.md, the
page and the annotations' order) and the merged run, every leg's tests, is recorded in it:
on CI the legs record nothing of their own (each is a part), the merge records the whole.
"""

from __future__ import annotations

import dataclasses
import html
import importlib
import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.artifacts.junit import (
    JunitCase,
    JunitUnreadable,
    count_outcomes,
    evidence_markers,
    junit_name,
    read_cases,
    write_merged,
)
from orchestrator.artifacts.layout import (
    JUNIT_FILE,
    LEG_FILE,
    MERGE_FILE,
    REPORT_FILE,
    STACK_FILE,
    SUMMARY_FILE,
)
from orchestrator.artifacts.run_history import RunHistory, record
from orchestrator.artifacts.summary import DETAILED_FAILURES, MESSAGE_LIMIT, SUMMARY_LINE
from orchestrator.artifacts.text import code_span, fence, keep_last_lines, shorten
from orchestrator.github import LegRecord, read_leg
from orchestrator.history import Label
from orchestrator.quarantine import READY_RUNS, READY_TEXT, ready_among, ready_to_leave

SHARDS_DIR = "shards"
EXIT_RED = 1
EMPTY_SHARD = "the folder is empty (did the leg upload its artifacts?)"
NO_JUNIT = "no junit.xml (did the shard run?)"
DUPLICATES_NAMED = 10  # tests named in the reason when many ran in the same shards
# Markdown that would turn a name or a message into markup (or a table cell border).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>&|~])")


@dataclass(frozen=True)
class ShardRun:
    """One shard folder as copied into the merged folder."""

    name: str
    folder: str  # relative to the merged folder: shards/<name>
    cases: tuple[JunitCase, ...]
    facts: dict[str, Any] = field(default_factory=dict)  # its stack.json, if any
    evidence: dict[str, str] = field(default_factory=dict)  # junit name -> tests/<slug>
    problem: str | None = None  # why this shard gave no results
    report: str = ""  # its index.html or summary.md (relative to the merged folder), if any
    links_left_out: tuple[str, ...] = ()  # symbolic links pointing outside the shard
    leg: LegRecord | None = None  # its ci-leg.json: which CI leg, which run attempt

    @property
    def seconds(self) -> float:
        return sum(case.seconds for case in self.cases)

    @property
    def rerun(self) -> bool:
        """Made by a re-run of its CI leg (run attempt 2 or later)."""
        return self.leg is not None and self.leg.attempt > 1

    @property
    def attempt_text(self) -> str:
        if self.leg is None:
            return "—"
        return f"{self.leg.attempt} (re-run)" if self.rerun else str(self.leg.attempt)


@dataclass(frozen=True)
class LeftOut:
    """A folder given to the merge that is not counted, and why."""

    folder: Path
    why: str


@dataclass(frozen=True)
class Selection:
    """The folders to merge (each leg's latest attempt) and those left out."""

    folders: tuple[Path, ...]
    left_out: tuple[LeftOut, ...] = ()


def select_folders(shard_dirs: Sequence[Path]) -> Selection:
    """Each leg's latest attempt (legs known by their `ci-leg.json`; folders without one are
    each a shard of their own), in the order given; an earlier attempt of a leg, or a merge's
    own output (a previous attempt's merged artifact), is left out with the reason."""
    latest: dict[str, tuple[int, Path]] = {}
    left_out: list[LeftOut] = []
    chosen: list[Path] = []
    for folder in shard_dirs:
        if is_merged_folder(folder):
            left_out.append(LeftOut(folder, "an earlier merge's output, not a leg's artifacts"))
            continue
        leg = read_leg(folder)
        if leg is None:
            chosen.append(folder)
            continue
        seen = latest.get(leg.name)
        if seen is None or leg.attempt >= seen[0]:
            if seen is not None:
                left_out.append(_superseded(seen[1], seen[0], leg))
                chosen.remove(seen[1])
            latest[leg.name] = (leg.attempt, folder)
            chosen.append(folder)
        else:
            left_out.append(_superseded(folder, leg.attempt, LegRecord(leg.name, "", seen[0])))
    return Selection(tuple(chosen), tuple(left_out))


def _superseded(folder: Path, attempt: int, latest: LegRecord) -> LeftOut:
    return LeftOut(
        folder,
        f"attempt {attempt} of leg {latest.name}, superseded by its attempt {latest.attempt}",
    )


def is_merged_folder(folder: Path) -> bool:
    """A merge's output (its `merge.json`, or `shards/` without a leg record)."""
    if (folder / MERGE_FILE).is_file():
        return True
    return (folder / SHARDS_DIR).is_dir() and not (folder / LEG_FILE).is_file()


@dataclass(frozen=True)
class MergedRun:
    root: Path
    shards: tuple[ShardRun, ...]
    expected: int | None = None  # how many shards there should have been
    left_out: tuple[LeftOut, ...] = ()  # folders given but not counted (superseded attempts)
    fail_on_flaky: bool = False  # a flaky test in any shard makes the merge red
    history: RunHistory | None = None  # the runs before this merge, its failures' labels

    @property
    def missing(self) -> int:
        """Shards expected but never handed to the merge (a leg that died before uploading)."""
        return max(0, (self.expected or 0) - len(self.shards))

    @property
    def cases(self) -> list[tuple[ShardRun, JunitCase]]:
        return [(shard, case) for shard in self.shards for case in shard.cases]

    @property
    def quarantined(self) -> list[tuple[ShardRun, JunitCase]]:
        """The quarantined tests: they ran, but their outcome does not count."""
        return [(shard, case) for shard, case in self.cases if case.quarantined]

    @property
    def duplicates(self) -> dict[str, list[str]]:
        """junit name -> the shards that each ran it, for tests that ran in more than one."""
        ran_in: dict[str, list[str]] = {}
        for shard, case in self.cases:
            ran_in.setdefault(case.junit_name, []).append(shard.name)
        return {name: shards for name, shards in ran_in.items() if len(shards) > 1}

    @property
    def reasons(self) -> list[str]:
        """Why the merge is red, one sentence each; empty when it is green."""
        reasons = []
        if self.missing:
            reasons.append(
                f"{self.missing} of {self.expected} expected shards never arrived "
                "(a leg that died before it uploaded its artifacts)"
            )
        reasons += [
            f"shard {s.name} gave no results: {s.problem}" for s in self.shards if s.problem
        ]
        by_shards: dict[tuple[str, ...], list[str]] = {}
        for name, ran_in in self.duplicates.items():
            by_shards.setdefault(tuple(ran_in), []).append(name)
        for shards, names in by_shards.items():
            shown = ", ".join(names[:DUPLICATES_NAMED])
            more = (
                f" and {len(names) - DUPLICATES_NAMED} more"
                if len(names) > DUPLICATES_NAMED
                else ""
            )
            which = f"test {shown}" if len(names) == 1 else f"{len(names)} tests ({shown}{more})"
            reasons.append(
                f"{which} ran in more than one shard: {', '.join(shards)} "
                "(shards must split the suite, not repeat it)"
            )
        counts = count_outcomes(case for _, case in self.cases if not case.quarantined)
        if counts["failed"]:
            reasons.append(f"{counts['failed']} test(s) failed")
        if counts["error"]:
            reasons.append(f"{counts['error']} test(s) had an error")
        if counts["flaky"] and self.fail_on_flaky:
            reasons.append(f"{counts['flaky']} test(s) were flaky and fail-on-flaky is set")
        return reasons

    @property
    def passed(self) -> bool:
        return not self.reasons


def merge_shards(
    shard_dirs: Sequence[Path],
    out: Path,
    *,
    expected: int | None = None,
    fail_on_flaky: bool = False,
    history: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> MergedRun:
    """Copy each leg's latest attempt into `out/shards/`, write junit.xml, summary.md,
    index.html and merge.json (folders left out: see `select_folders`); with a `history`
    folder, label the failures from it and record the merged run in it. `fail_on_flaky`: a
    flaky test (not quarantined) makes the merge red."""
    selection = select_folders(shard_dirs)
    out.mkdir(parents=True, exist_ok=True)
    shards = []
    junits: list[tuple[str, Path]] = []
    used: set[str] = set()
    for source in selection.folders:
        name = _unique(source.resolve().name, used)
        target = out / SHARDS_DIR / name
        left_out = copy_shard(source, target)
        shard = dataclasses.replace(_read_shard(name, target), links_left_out=tuple(left_out))
        shards.append(shard)
        if shard.problem is None:
            junits.append((name, target / JUNIT_FILE))
    merged = MergedRun(
        out, tuple(shards), expected, selection.left_out, fail_on_flaky=fail_on_flaky
    )
    tests = merged_tests(merged)
    run_id = merged_run_id(merged, env)
    if history is not None:
        merged = dataclasses.replace(
            merged, history=RunHistory.load(history, tests, leave_out=run_id)
        )
    write_merged(junits, out / JUNIT_FILE)
    (out / SUMMARY_FILE).write_text(render_summary(merged), encoding="utf-8")
    (out / REPORT_FILE).write_text(render_index(merged, tests), encoding="utf-8")
    (out / MERGE_FILE).write_text(json.dumps(merge_facts(merged), indent=2) + "\n", "utf-8")
    if history is not None and tests:
        record(history, tests, run_id, None, env=env)
    return merged


def merged_tests(merged: MergedRun) -> list[Any]:
    """Every counted test of every shard (`TestResult`s, node ids from its results.jsonl),
    evidence paths made relative to the merged folder; failures first."""
    api = report_api()
    if api is None:
        return []
    tests = []
    for shard in merged.shards:
        if shard.problem is not None:
            continue  # no junit.xml to count: its tests are in none of the three files
        # The tests junit.xml counts (results.jsonl may hold more of a run cut short).
        counted = {case.junit_name for case in shard.cases}
        for test in api.load_run(merged.root / shard.folder).tests:
            if junit_name(test.nodeid) not in counted:
                continue
            evidence = test.evidence and _moved_under(test.evidence, shard.folder)
            tests.append(dataclasses.replace(test, evidence=evidence))
    tests.sort(key=lambda test: not test.failed or test.quarantined)
    return tests


def merged_run_id(merged: MergedRun, env: Mapping[str, str] | None = None) -> str:
    """The merged run's id in the history: the workflow run and its attempt on GitHub
    (`merge-<GITHUB_RUN_ID>-<GITHUB_RUN_ATTEMPT>`), else its shards' run ids."""
    values = os.environ if env is None else env
    if values.get("GITHUB_RUN_ID"):
        return f"merge-{values['GITHUB_RUN_ID']}-{values.get('GITHUB_RUN_ATTEMPT') or '1'}"
    shard_ids = [str(shard.facts.get("run_id", shard.name)) for shard in merged.shards]
    return "merge-" + "+".join(shard_ids)


def labels_by_junit_name(merged: MergedRun) -> dict[str, Label]:
    """junit name -> the label of each failure (the merged summary names tests so)."""
    labels = merged.history.labels if merged.history is not None else {}
    return {junit_name(nodeid): label for nodeid, label in labels.items()}


def merge_facts(merged: MergedRun) -> dict[str, Any]:
    """merge.json: which folder (leg, attempt) each shard is, what was left out, the verdict."""
    return {
        "verdict": "passed" if merged.passed else "failed",
        "reasons": merged.reasons,
        "expected": merged.expected,
        "fail_on_flaky": merged.fail_on_flaky,
        "quarantined": [
            {"test": case.junit_name, "outcome": case.outcome, "shard": shard.name}
            for shard, case in merged.quarantined
        ],
        "shards": [
            {
                "name": shard.name,
                "folder": shard.folder,
                "leg": shard.leg.name if shard.leg else None,
                "run_id": shard.leg.run_id if shard.leg else None,
                "run_attempt": shard.leg.attempt if shard.leg else None,
                "rerun": shard.rerun,
                "tests": len(shard.cases),
                "problem": shard.problem,
            }
            for shard in merged.shards
        ],
        "left_out": [{"folder": str(item.folder), "why": item.why} for item in merged.left_out],
    }


def rerun_lines(merged: MergedRun) -> list[str]:
    """One plain sentence per re-run leg and per folder left out (for summary and stderr)."""
    lines = [
        f"shard {shard.name} is from a re-run of its leg (attempt {shard.leg.attempt})"
        for shard in merged.shards
        if shard.leg is not None and shard.rerun
    ]
    lines += [f"left out {item.folder.name}: {item.why}" for item in merged.left_out]
    return lines


def render_summary(merged: MergedRun) -> str:
    """The merged summary.md; links are relative to the merged folder. Names and messages
    cannot turn into markup: names are escaped, failure text sits in a fenced block."""
    counts = count_outcomes(case for _, case in merged.cases)
    verdict = "passed" if merged.passed else "FAILED"
    lines = [
        f"# e2e run (merged, {len(merged.shards)} shards): {verdict}",
        "",
        f"- tests: {len(merged.cases)} · passed {counts['passed']} · failed {counts['failed']}"
        f" · errors {counts['error']} · skipped {counts['skipped']} · flaky {counts['flaky']}"
        + (f" · quarantined {len(merged.quarantined)}" if merged.quarantined else ""),
    ]
    lines += [f"- {markdown_text(line)}" for line in rerun_lines(merged)]
    reasons = merged.reasons
    if reasons:
        lines += ["", "## Why this merge is red", ""]
        lines += [f"- {markdown_text(reason)}" for reason in reasons]
    lines += [
        "",
        "| shard | provider | tests | failed | test time | report | attempt |",
        "|---|---|---|---|---|---|---|",
    ]
    for shard in merged.shards:
        report = (
            f"[{markdown_text(Path(shard.report).name)}]({shard.report})" if shard.report else "—"
        )
        counted = count_outcomes(case for case in shard.cases if not case.quarantined)
        failed = counted["failed"] + counted["error"]
        tests = str(len(shard.cases)) if shard.problem is None else shard.problem
        provider = str(shard.facts.get("provider", "?"))
        lines.append(
            f"| {markdown_text(shard.name)} | {markdown_text(provider)} | {markdown_text(tests)}"
            f" | {failed} | {shard.seconds:.1f}s | {report} | {shard.attempt_text} |"
        )
    failures = [
        (s, c) for s, c in merged.cases if c.outcome in ("failed", "error") and not c.quarantined
    ]
    labels = labels_by_junit_name(merged)
    if failures:
        lines += ["", f"## Failures ({len(failures)})", ""]
        for number, (shard, case) in enumerate(failures, start=1):
            label = f" · **{labels[case.junit_name]}**" if case.junit_name in labels else ""
            if number <= DETAILED_FAILURES:
                lines += _failure(number, shard, case, label)
            else:
                lines.append(f"{number}. {code_span(case.junit_name)} ({case.outcome}){label}")
    lines += quarantined_lines(merged)
    lines += ["", "Report: [index.html](index.html) · [junit.xml](junit.xml)"]
    return "\n".join(lines) + "\n"


def quarantined_lines(merged: MergedRun) -> list[str]:
    """The merged summary's "Quarantined" section: each quarantined test, its outcome, shard."""
    if not merged.quarantined:
        return []
    lines = ["", f"## Quarantined ({len(merged.quarantined)}): ran, not counted in the verdict", ""]
    ready = ready_by_junit_name(merged)
    for shard, case in merged.quarantined:
        reason = shorten(case.message or case.text, SUMMARY_LINE)
        lines.append(
            f"- {code_span(case.junit_name)}: {case.outcome} (shard {markdown_text(shard.name)})"
            + (f" · {code_span(reason)}" if reason and case.outcome != "passed" else "")
            + (
                f" · **{READY_TEXT}** (passed its last {READY_RUNS} runs)"
                if case.junit_name in ready
                else ""
            )
        )
    return lines


def ready_by_junit_name(merged: MergedRun) -> set[str]:
    """junit names of the quarantined tests ready to leave (the history knows node ids)."""
    if merged.history is None or not merged.quarantined:
        return set()
    runs = merged.history.runs
    nodeids = {junit_name(nodeid): nodeid for run in runs for nodeid in run.tests}
    outcomes = {
        nodeids[case.junit_name]: case.outcome
        for _, case in merged.quarantined
        if case.junit_name in nodeids
    }
    return {junit_name(nodeid) for nodeid in ready_to_leave(outcomes, runs, "")}


def _failure(number: int, shard: ShardRun, case: JunitCase, label: str = "") -> list[str]:
    """One failed test: its name, shard, label, evidence link, and its text in a fenced block."""
    lines = [
        f"### {number}. {code_span(case.junit_name)} ({case.outcome}, shard "
        f"{markdown_text(shard.name)}){label}",
        "",
    ]
    evidence = shard.evidence.get(case.junit_name)
    if evidence:
        label = markdown_text(f"{shard.name}/{evidence}/")
        lines += [f"Evidence: [{label}]({shard.folder}/{evidence}/)", ""]
    text = case.text if case.message in case.text else f"{case.text}\n\n{case.message}"
    text, left = keep_last_lines(text.strip(), max(MESSAGE_LIMIT, len(case.message) + 500))
    if left:
        text = f"… {left} earlier line(s) in {shard.folder}/junit.xml\n{text}"
    reason = shorten(case.message or case.text, SUMMARY_LINE) or "(no message)"
    return [
        *lines,
        "<details>",
        f"<summary>{html.escape(reason, quote=False)}</summary>",
        "",
        fence(text or "(no message)"),
        "",
        "</details>",
        "",
    ]


def markdown_text(text: str) -> str:
    """`text` as plain text in Markdown: its markup characters (and `|`) escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def report_api() -> Any | None:
    """The evidence report's API (`orchestrator.artifacts` with `load_run`, `render_report`,
    `RunData`, `RunInfo`) when that package is installed, else None (the plain listing)."""
    artifacts = importlib.import_module("orchestrator.artifacts")
    needed = ("load_run", "render_report", "RunData", "RunInfo")
    return artifacts if all(hasattr(artifacts, name) for name in needed) else None


def render_index(merged: MergedRun, tests: list[Any] | None = None) -> str:
    """index.html: the evidence report over every shard's tests (`merged_tests`, read here
    when not given) when it is installed, else a plain listing of every test with a link
    into its shard's evidence."""
    api = report_api()
    if api is None:
        return render_listing(merged)
    return _evidence_report(api, merged, merged_tests(merged) if tests is None else tests)


def _evidence_report(api: Any, merged: MergedRun, tests: list[Any]) -> str:
    """One RunData over all shards (evidence paths prefixed with `shards/<name>/`, so the
    report's relative links work from the merged folder), rendered by the report module."""
    providers = sorted({str(s.facts.get("provider", "?")) for s in merged.shards})
    reasons = merged.reasons
    info = api.RunInfo(
        run_id=", ".join(_run_label(shard) for shard in merged.shards),
        provider=" + ".join(providers),
        verdict="passed" if merged.passed else "failed",
        error=why_red(reasons),
    )
    ready = ready_among(tests, merged.history.runs, "") if merged.history is not None else ()
    data = api.RunData(merged.root, info, tests, has_junit=True, ready_to_leave=ready)
    return str(api.render_report(data, history=merged.history))


def _run_label(shard: ShardRun) -> str:
    """The shard's run id as the page shows it; a re-run leg says so."""
    run_id = str(shard.facts.get("run_id", shard.name))
    if shard.leg is not None and shard.rerun:
        return f"{run_id} (re-run, attempt {shard.leg.attempt})"
    return run_id


def why_red(reasons: Sequence[str]) -> str | None:
    """The reasons as the page's error text; None when there are none."""
    if not reasons:
        return None
    return "This merge is red because:\n" + "\n".join(f"- {reason}" for reason in reasons)


def _moved_under(evidence: Any, folder: str) -> Any:
    """The report's Evidence with its paths (relative to a shard) relative to the merged root."""
    return dataclasses.replace(
        evidence,
        folder=f"{folder}/{evidence.folder}",
        files=[f"{folder}/{path}" for path in evidence.files],
        screenshots=[f"{folder}/{path}" for path in evidence.screenshots],
        traces=[f"{folder}/{path}" for path in evidence.traces],
    )


def render_listing(merged: MergedRun) -> str:
    """index.html as a plain listing: every test, its outcome, time and a link into the
    evidence of the shard that ran it."""
    rows = []
    order = {"error": 0, "failed": 1, "flaky": 2, "skipped": 3, "passed": 4}
    ranked = sorted(merged.cases, key=lambda pair: (order[pair[1].outcome], pair[1].junit_name))
    for shard, case in ranked:
        evidence = shard.evidence.get(case.junit_name)
        target = f"{shard.folder}/{evidence}/" if evidence else shard.report or f"{shard.folder}/"
        label = "evidence" if evidence else "shard report"
        rows.append(
            f'<tr class="{case.outcome}"><td>{case.outcome}</td>'
            f"<td>{html.escape(case.junit_name)}</td><td>{html.escape(shard.name)}</td>"
            f"<td>{case.seconds:.2f}s</td>"
            f'<td><a href="{html.escape(target)}">{label}</a></td></tr>'
        )
    problems = "".join(f"<li>{html.escape(reason)}</li>" for reason in merged.reasons)
    summary = html.escape(render_summary(merged))
    return (
        "<!doctype html><meta charset=utf-8><title>e2e run (merged)</title>"
        "<style>body{font-family:sans-serif;margin:1.5em}td,th{padding:2px 8px;text-align:left}"
        "tr.failed,tr.error{background:#fdd}tr.skipped{color:#777}pre{white-space:pre-wrap}</style>"
        f"<pre>{summary}</pre>"
        + (f"<h2>Why this merge is red</h2><ul>{problems}</ul>" if problems else "")
        + "<h2>Tests</h2><table><tr><th>outcome</th><th>test</th><th>shard</th><th>time</th>"
        f"<th></th></tr>{''.join(rows)}</table>\n"
    )


def check_arguments(out: Path, shard_dirs: Sequence[Path], expect: int | None) -> str | None:
    for folder in shard_dirs:
        if not folder.is_dir():
            return f"{folder} is not a folder; give the shards' artifacts folders"
    legs = len(select_folders(shard_dirs).folders)  # an earlier attempt of a leg is no leg
    if expect is not None and expect < legs:
        return (
            f"--expect {expect} but {legs} shard folders were given. Fix: pass "
            f"--expect {legs} (the number of legs), or only the shards' folders"
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        return f"{out} exists and is not empty; give a new or empty --out folder"
    resolved = out.resolve()
    for folder in shard_dirs:
        if resolved.is_relative_to(folder.resolve()):
            return f"--out {out} is inside the shard folder {folder}; put it elsewhere"
    return None


def copy_shard(source: Path, target: Path) -> list[str]:
    """Copy a shard folder; a symbolic link is copied as a link when it points (relatively)
    inside the shard, else left out, never followed. Returns the links left out."""
    root = source.resolve()
    left_out: list[str] = []

    def outside_links(folder: str, names: list[str]) -> set[str]:
        skipped = set()
        for name in names:
            path = Path(folder) / name
            if path.is_symlink() and not _points_inside(path, root):
                skipped.add(name)
                left_out.append(path.relative_to(source).as_posix())
        return skipped

    shutil.copytree(source, target, symlinks=True, ignore=outside_links)
    return sorted(left_out)


def _points_inside(link: Path, root: Path) -> bool:
    """A relative link whose target (followed to the end) is inside `root`."""
    destination = os.readlink(link)
    return not os.path.isabs(destination) and link.resolve().is_relative_to(root)


def _read_shard(name: str, folder: Path) -> ShardRun:
    relative = f"{SHARDS_DIR}/{name}"
    facts = _read_facts(folder / STACK_FILE)
    pages = [f"{relative}/{p}" for p in (REPORT_FILE, SUMMARY_FILE) if (folder / p).is_file()]
    report = pages[0] if pages else ""
    leg = read_leg(folder)
    junit = folder / JUNIT_FILE
    if not junit.is_file():
        # The leg's record alone (written after a run that never started) is no result.
        emptied = not any(path.name != LEG_FILE for path in folder.iterdir())
        problem = EMPTY_SHARD if emptied else NO_JUNIT
        return ShardRun(name, relative, (), facts, problem=problem, report=report, leg=leg)
    try:
        cases = read_cases(junit, suite=name)
    except JunitUnreadable as exc:
        problem = str(exc).replace(str(folder), name)
        return ShardRun(name, relative, (), facts, problem=problem, report=report, leg=leg)
    evidence = {
        test: marker.relative_to(folder).as_posix()
        for test, (_, marker) in evidence_markers(folder).items()
    }
    return ShardRun(name, relative, tuple(cases), facts, evidence, report=report, leg=leg)


def _read_facts(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _unique(name: str, used: set[str]) -> str:
    candidate, number = name, 1
    while candidate in used:
        number += 1
        candidate = f"{name}-{number}"
    used.add(candidate)
    return candidate
