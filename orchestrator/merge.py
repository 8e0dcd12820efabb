"""`python -m orchestrator merge --out DIR SHARD_DIR...`: one verdict from many shard folders.

Each SHARD_DIR is one run's artifacts folder (e.g. one CI matrix leg's downloaded artifact).
DIR gets a copy of every shard under `shards/<name>/` (so every link stays inside DIR), one
`junit.xml` holding every shard's suite, one `summary.md` and one `index.html` listing every
test with a link into the evidence of the shard that ran it. Exit status: 0 when every shard
reported and no test failed, 1 otherwise, 2 for bad arguments. `--annotate` prints a GitHub
`::error` line per failed test (when GITHUB_ACTIONS=true), titled by its node id.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import importlib
import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from orchestrator.artifacts.junit import (
    JunitCase,
    JunitUnreadable,
    count_outcomes,
    evidence_markers,
    read_cases,
    write_merged,
)
from orchestrator.errors import OrchestratorError
from orchestrator.github import print_annotations

SHARDS_DIR = "shards"
EXIT_RED = 1
EXIT_USAGE = 2


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

    @property
    def seconds(self) -> float:
        return sum(case.seconds for case in self.cases)


@dataclass(frozen=True)
class MergedRun:
    root: Path
    shards: tuple[ShardRun, ...]
    expected: int | None = None  # how many shards there should have been

    @property
    def missing(self) -> int:
        """Shards expected but never handed to the merge (a leg that died before uploading)."""
        return max(0, (self.expected or 0) - len(self.shards))

    @property
    def cases(self) -> list[tuple[ShardRun, JunitCase]]:
        return [(shard, case) for shard in self.shards for case in shard.cases]

    @property
    def passed(self) -> bool:
        counts = count_outcomes(case for _, case in self.cases)
        no_problem = all(shard.problem is None for shard in self.shards) and not self.missing
        return no_problem and counts["failed"] == 0 and counts["error"] == 0


def merge_shards(
    shard_dirs: Sequence[Path], out: Path, *, expected: int | None = None
) -> MergedRun:
    """Copy the shards into `out/shards/`, write junit.xml, summary.md and index.html."""
    out.mkdir(parents=True, exist_ok=True)
    shards = []
    junits: list[tuple[str, Path]] = []
    used: set[str] = set()
    for source in shard_dirs:
        name = _unique(source.resolve().name, used)
        target = out / SHARDS_DIR / name
        shutil.copytree(source, target)
        shard = _read_shard(name, target)
        shards.append(shard)
        if shard.problem is None:
            junits.append((name, target / "junit.xml"))
    merged = MergedRun(out, tuple(shards), expected)
    write_merged(junits, out / "junit.xml")
    (out / "summary.md").write_text(render_summary(merged), encoding="utf-8")
    (out / "index.html").write_text(render_index(merged), encoding="utf-8")
    return merged


def render_summary(merged: MergedRun) -> str:
    """The merged summary.md; links are relative to the merged folder."""
    counts = count_outcomes(case for _, case in merged.cases)
    verdict = "passed" if merged.passed else "FAILED"
    lines = [
        f"# e2e run (merged, {len(merged.shards)} shards): {verdict}",
        "",
        f"- tests: {len(merged.cases)} · passed {counts['passed']} · failed {counts['failed']}"
        f" · errors {counts['error']} · skipped {counts['skipped']}",
        *(
            [f"- **{merged.missing} of {merged.expected} expected shards never arrived**"]
            if merged.missing
            else []
        ),
        "",
        "| shard | provider | tests | failed | test time | report |",
        "|---|---|---|---|---|---|",
    ]
    for shard in merged.shards:
        shard_counts = count_outcomes(shard.cases)
        report = f"[{Path(shard.report).name}]({shard.report})" if shard.report else "—"
        failed = shard_counts["failed"] + shard_counts["error"]
        lines.append(
            f"| {shard.name} | {shard.facts.get('provider', '?')} | "
            f"{len(shard.cases) if shard.problem is None else shard.problem} | {failed} | "
            f"{shard.seconds:.1f}s | {report} |"
        )
    failures = [(s, c) for s, c in merged.cases if c.outcome in ("failed", "error")]
    if failures:
        lines += ["", "## Failures", ""]
        for shard, case in failures:
            message = " ".join(case.message.split())[:300]
            evidence = shard.evidence.get(case.junit_name)
            link = (
                f" — evidence: [{shard.name}/{evidence}/]({shard.folder}/{evidence}/)"
                if evidence
                else ""
            )
            lines.append(f"- `{case.junit_name}` ({shard.name}): {message}{link}")
    lines += ["", "Report: [index.html](index.html) · [junit.xml](junit.xml)"]
    return "\n".join(lines) + "\n"


def report_api() -> Any | None:
    """The evidence report's API (`orchestrator.artifacts` with `load_run`, `render_report`,
    `RunData`, `RunInfo`) when that package is installed, else None (the plain listing)."""
    artifacts = importlib.import_module("orchestrator.artifacts")
    needed = ("load_run", "render_report", "RunData", "RunInfo")
    return artifacts if all(hasattr(artifacts, name) for name in needed) else None


def render_index(merged: MergedRun) -> str:
    """index.html: the evidence report over every shard's tests when it is installed, else a
    plain listing of every test with a link into its shard's evidence."""
    api = report_api()
    return _evidence_report(api, merged) if api is not None else render_listing(merged)


def _evidence_report(api: Any, merged: MergedRun) -> str:
    """One RunData over all shards (evidence paths prefixed with `shards/<name>/`, so the
    report's relative links work from the merged folder), rendered by the report module."""
    tests = []
    for shard in merged.shards:
        for test in api.load_run(merged.root / shard.folder).tests:
            evidence = test.evidence and _moved_under(test.evidence, shard.folder)
            tests.append(dataclasses.replace(test, evidence=evidence))
    tests.sort(key=lambda test: not test.failed)
    providers = sorted({str(s.facts.get("provider", "?")) for s in merged.shards})
    info = api.RunInfo(
        run_id=", ".join(str(s.facts.get("run_id", s.name)) for s in merged.shards),
        provider=" + ".join(providers),
        verdict="passed" if merged.passed else "failed",
        error=(
            f"{merged.missing} of {merged.expected} expected shards never arrived"
            if merged.missing
            else None
        ),
    )
    return str(api.render_report(api.RunData(merged.root, info, tests, has_junit=True)))


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
    order = {"error": 0, "failed": 1, "skipped": 2, "passed": 3}
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
    problems = "".join(
        f"<li>{html.escape(s.name)}: {html.escape(s.problem)}</li>"
        for s in merged.shards
        if s.problem
    )
    summary = html.escape(render_summary(merged))
    return (
        "<!doctype html><meta charset=utf-8><title>e2e run (merged)</title>"
        "<style>body{font-family:sans-serif;margin:1.5em}td,th{padding:2px 8px;text-align:left}"
        "tr.failed,tr.error{background:#fdd}tr.skipped{color:#777}pre{white-space:pre-wrap}</style>"
        f"<pre>{summary}</pre>"
        + (f"<h2>Shards without results</h2><ul>{problems}</ul>" if problems else "")
        + "<h2>Tests</h2><table><tr><th>outcome</th><th>test</th><th>shard</th><th>time</th>"
        f"<th></th></tr>{''.join(rows)}</table>\n"
    )


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see: {self.prog} --help)\n")


def main(argv: Sequence[str] | None = None) -> int:
    """The `merge` command; returns its exit status."""
    parser = _OneLineParser(
        prog="python -m orchestrator merge",
        description="Merge shard artifacts folders into one (junit.xml, summary.md, index.html).",
    )
    parser.add_argument("--out", type=Path, required=True, help="the merged folder (new or empty)")
    parser.add_argument("shard_dirs", nargs="+", type=Path, metavar="SHARD_DIR")
    parser.add_argument(
        "--expect",
        type=int,
        default=None,
        metavar="N",
        help="how many shards there should be: fewer make the verdict red (a leg that died)",
    )
    parser.add_argument(
        "--annotate",
        action="store_true",
        help="print ::error annotations for the failed tests when GITHUB_ACTIONS=true",
    )
    args = parser.parse_args(argv)
    problem = _check_arguments(args.out, args.shard_dirs)
    if problem:
        print(f"merge: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        merged = merge_shards(args.shard_dirs, args.out, expected=args.expect)
    except OrchestratorError as exc:
        print(f"merge: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.annotate:
        print_annotations(args.out)
    counts = count_outcomes(case for _, case in merged.cases)
    missing = [s.name for s in merged.shards if s.problem]
    if merged.missing:
        missing.append(f"{merged.missing} expected shard(s) that never arrived")
    print(
        f"merge  {len(merged.shards)} shards · {len(merged.cases)} tests · passed "
        f"{counts['passed']} · failed {counts['failed']} · errors {counts['error']} · skipped "
        f"{counts['skipped']}" + (f" · no results from {', '.join(missing)}" if missing else "")
        + f"  ->  {args.out}/",
        file=sys.stderr,
    )
    return 0 if merged.passed else EXIT_RED


def _check_arguments(out: Path, shard_dirs: Sequence[Path]) -> str | None:
    for folder in shard_dirs:
        if not folder.is_dir():
            return f"{folder} is not a folder; give the shards' artifacts folders"
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        return f"{out} exists and is not empty; give a new or empty --out folder"
    resolved = out.resolve()
    for folder in shard_dirs:
        if resolved.is_relative_to(folder.resolve()):
            return f"--out {out} is inside the shard folder {folder}; put it elsewhere"
    return None


def _read_shard(name: str, folder: Path) -> ShardRun:
    relative = f"{SHARDS_DIR}/{name}"
    facts = _read_facts(folder / "stack.json")
    pages = [f"{relative}/{p}" for p in ("index.html", "summary.md") if (folder / p).is_file()]
    report = pages[0] if pages else ""
    junit = folder / "junit.xml"
    if not junit.is_file():
        problem = "no junit.xml (did the shard run?)"
        return ShardRun(name, relative, (), facts, problem=problem, report=report)
    try:
        cases = read_cases(junit, suite=name)
    except JunitUnreadable as exc:
        problem = str(exc).replace(str(folder), name)
        return ShardRun(name, relative, (), facts, problem=problem, report=report)
    evidence = {
        name: marker.relative_to(folder).as_posix()
        for name, (_, marker) in evidence_markers(folder).items()
    }
    return ShardRun(name, relative, tuple(cases), facts, evidence, report=report)


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


if __name__ == "__main__":
    sys.exit(main())
