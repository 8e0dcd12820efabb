"""The artifacts folder: layout, stack.json, per-failed-test log slices, summary.md."""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.redaction import Redactor

FAILED_TEST_FILE = "test.json"  # written by the pytest plugin into tests/<slug>/


@dataclass
class JunitTotals:
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    seconds: float = 0.0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (name, message)

    @property
    def passed(self) -> int:
        return self.tests - self.failures - self.errors - self.skipped


class Artifacts:
    """Owns `<root>/`: stack.json, junit.xml, summary.md, index.html, logs/, tests/<slug>/."""

    def __init__(self, root: Path, redactor: Redactor) -> None:
        self.root = root
        self.redactor = redactor

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def tests_dir(self) -> Path:
        return self.root / "tests"

    @property
    def junit_path(self) -> Path:
        return self.root / "junit.xml"

    def create(self) -> Artifacts:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.tests_dir.mkdir(parents=True, exist_ok=True)
        return self

    def write_text(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.redactor(text))
        return path

    def write_json(self, relative: str, data: Any) -> Path:
        return self.write_text(relative, json.dumps(data, indent=2, default=str) + "\n")

    # -- after the run --------------------------------------------------------------------

    def redact_files(self) -> list[Path]:
        """Pass every text file through the redactor, also those written by others (the
        command's junit.xml, the plugin's tests/*/test.json); binary files are left alone."""
        changed = []
        for path in sorted(p for p in self.root.rglob("*") if p.is_file()):
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue  # screenshots, traces
            redacted = self.redactor(text)
            if redacted != text:
                path.write_text(redacted, encoding="utf-8")
                changed.append(path)
        return changed

    def slice_logs_for_failed_tests(self) -> list[Path]:
        """Copy into each failed test's folder only the log records carrying its test id."""
        folders = []
        for marker in sorted(self.tests_dir.glob(f"*/{FAILED_TEST_FILE}")):
            info = json.loads(marker.read_text())
            test_id = info.get("test_id")
            if not test_id:
                continue
            # backend.jsonl (its log stream) and backend.log (its stdout) share one slice:
            # merged, each record once, so neither source overwrites the other.
            slices: dict[str, dict[str, dict[str, Any]]] = {}
            for source in sorted(p for p in self.logs_dir.glob("*") if p.is_file()):
                for record in _records_with_test_id(source, test_id):
                    key = json.dumps(record, sort_keys=True, default=str)
                    slices.setdefault(source.stem, {}).setdefault(key, record)
            for stem, records in slices.items():
                (marker.parent / f"{stem}.jsonl").write_text(
                    self.redactor(
                        "".join(json.dumps(r, default=str) + "\n" for r in records.values())
                    )
                )
            folders.append(marker.parent)
        return folders

    def read_junit(self) -> JunitTotals | None:
        if not self.junit_path.exists():
            return None
        totals = JunitTotals()
        try:
            root = ET.parse(self.junit_path).getroot()
        except ET.ParseError:
            return None
        suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
        for suite in suites:
            totals.tests += int(suite.get("tests", 0))
            totals.failures += int(suite.get("failures", 0))
            totals.errors += int(suite.get("errors", 0))
            totals.skipped += int(suite.get("skipped", 0))
            totals.seconds += float(suite.get("time", 0) or 0)
            for case in suite.iter("testcase"):
                problem = case.find("failure")
                if problem is None:
                    problem = case.find("error")
                if problem is not None:
                    name = f"{case.get('classname', '')}::{case.get('name', '')}"
                    message = " ".join((problem.get("message") or "").split())  # one list line
                    totals.failed.append((name, message[:300]))
        return totals

    def write_summary(
        self,
        verdict: str,
        stack_facts: dict[str, Any],
        command_status: int | None,
        error: str | None = None,
    ) -> Path:
        """summary.md, fit for $GITHUB_STEP_SUMMARY, plus a small index.html."""
        totals = self.read_junit()
        failed_folders = {
            json.loads(p.read_text()).get("nodeid", ""): p.parent.name
            for p in self.tests_dir.glob(f"*/{FAILED_TEST_FILE}")
        }
        lines = [f"# e2e run: {verdict}", ""]
        provider = stack_facts.get("provider", "?")
        timings = stack_facts.get("timings", {})
        timing_text = " · ".join(f"{k} {v:.2f}s" for k, v in timings.items())
        lines.append(
            f"- stack: **{provider}** (run `{stack_facts.get('run_id', '?')}`) {timing_text}"
        )
        if command_status is not None:
            lines.append(f"- command exit status: {command_status}")
        if error:
            lines += ["", "## Stack error", "", "```", error.strip()[-4000:], "```"]
        if totals is not None:
            lines.append(
                f"- tests: {totals.tests} · passed {totals.passed} · failed {totals.failures}"
                f" · errors {totals.errors} · skipped {totals.skipped} · {totals.seconds:.1f}s"
            )
            if totals.failed:
                lines += ["", "## Failures", ""]
                for name, message in totals.failed:
                    folder = _folder_for(name, failed_folders)
                    link = f" — evidence: [tests/{folder}/](tests/{folder}/)" if folder else ""
                    lines.append(f"- `{name}`: {message}{link}")
        lines += [
            "",
            "Logs: [logs/](logs/) · stack: [stack.json](stack.json)"
            + (" · [junit.xml](junit.xml)" if totals is not None else ""),
        ]
        summary = self.write_text("summary.md", "\n".join(lines) + "\n")
        self.write_text("index.html", _index_html(self.root, "\n".join(lines)))
        return summary


def _folder_for(junit_name: str, folders: dict[str, str]) -> str | None:
    # junit names are "pkg.module.Class::test[param]"; node ids "pkg/module.py::Class::test[param]"
    for nodeid, folder in folders.items():
        if _junit_name(nodeid) == junit_name:
            return folder
    # A junit_suite prefix or a different rootdir: fall back to the test name, if unambiguous.
    test_name = junit_name.rsplit("::", maxsplit=1)[-1]
    matches = [f for nodeid, f in folders.items() if nodeid.split("::")[-1] == test_name]
    return matches[0] if len(matches) == 1 else None


def _junit_name(nodeid: str) -> str:
    """The classname::name pytest's junitxml writes for `nodeid` (its mangle_test_address)."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]) + "::" + names[-1]


def _records_with_test_id(path: Path, test_id: str) -> list[dict[str, Any]]:
    records = []
    with path.open(errors="replace") as handle:
        for line in handle:
            if test_id not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("test_id") == test_id:
                records.append(record)
    return records


def _index_html(root: Path, summary_md: str) -> str:
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    links = "\n".join(f'<li><a href="{html.escape(f)}">{html.escape(f)}</a></li>' for f in files)
    return (
        "<!doctype html><meta charset=utf-8><title>e2e artifacts</title>"
        f"<pre>{html.escape(summary_md)}</pre><h2>Files</h2><ul>{links}</ul>\n"
    )
