"""pytest's junit.xml: read as test cases (and totals), written back as one merged file.

The one junit reader: the report falls back on it when a run has no results.jsonl, `merge`
combines shards with it, GitHub annotations come from its cases. Standard library only.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, get_args

from orchestrator.artifacts.layout import FAILED_TEST_FILE
from orchestrator.errors import OrchestratorError

Outcome = Literal["passed", "failed", "error", "skipped", "flaky"]
_PROBLEMS: tuple[Outcome, ...] = ("failed", "error", "skipped")
_TAGS: dict[str, Outcome] = {"failure": "failed", "error": "error", "skipped": "skipped"}
# Maven Surefire's elements for retried tests, which test reporters read: on a testcase that
# passed on retry `<flakyFailure>`/`<flakyError>` per failed attempt; on one that failed
# every attempt `<rerunFailure>`/`<rerunError>` per earlier attempt, beside its `<failure>`.
FLAKY_TAGS = {"failed": "flakyFailure", "error": "flakyError"}
RERUN_TAGS = {"failed": "rerunFailure", "error": "rerunError"}
# A quarantined test (see `mark_quarantined`): this property holds its own outcome.
QUARANTINE_PROPERTY = "ci-stack.quarantined"
QUARANTINE_TYPE = "ci-stack.quarantined"  # the type of the <skipped> its failure became
# "tests/test_x.py:12: AssertionError": pytest's location line of a traceback entry
_LOCATION = re.compile(r"^([^\s:][^:\n]*\.py):(\d+):", re.MULTILINE)


class JunitUnreadable(OrchestratorError):
    """A junit.xml that exists but is not pytest's XML."""


@dataclass(frozen=True)
class JunitCase:
    """One `<testcase>`: its names, time, outcome and the failure text pytest wrote."""

    classname: str
    name: str
    seconds: float
    outcome: Outcome
    message: str = ""
    text: str = ""
    suite: str = ""
    file: str | None = None  # pytest writes file/line only with junit_family=xunit1
    line: int | None = None
    quarantined: bool = False  # its outcome does not count (`mark_quarantined`)

    @property
    def junit_name(self) -> str:
        """`classname::name`, the form `artifacts` uses to match evidence folders."""
        return f"{self.classname}::{self.name}"

    def location(self) -> tuple[str, int]:
        """`(file, line)` of the failure in the test's own file when the traceback shows it;
        else the last location in the traceback; else the test module's path, line 1."""
        module_file = self.classname.replace(".", "/")
        return failure_location(self.text, module_file) or (_module_path(self.classname), 1)


def failure_location(text: str, module: str) -> tuple[str, int] | None:
    """The last `path.py:line:` of a pytest traceback inside `module` (a path without `.py`,
    e.g. `tests/test_x`), else the last one at all; None when the text shows none."""
    found = [(path, int(line)) for path, line in _LOCATION.findall(text)]
    in_module = [
        (path, line)
        for path, line in found
        if _is_module_of(path.removesuffix(".py").removeprefix("./"), module)
    ]
    candidates = in_module or found
    return candidates[-1] if candidates else None


def junit_name(nodeid: str) -> str:
    """The `classname::name` pytest's junitxml writes for a node id (its mangle_test_address)."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]) + "::" + names[-1]


def evidence_markers(folder: Path, *, below: bool = False) -> dict[str, tuple[str, Path]]:
    """junit name -> (node id, evidence folder) from the pytest plugin's `tests/<slug>/test.json`
    markers in `folder` (`below`: also in folders under it, e.g. a merged run's shards)."""
    pattern = f"**/tests/*/{FAILED_TEST_FILE}" if below else f"tests/*/{FAILED_TEST_FILE}"
    found: dict[str, tuple[str, Path]] = {}
    for marker in sorted(folder.glob(pattern)):
        try:
            nodeid = json.loads(marker.read_text(encoding="utf-8")).get("nodeid")
        except (OSError, ValueError, AttributeError):
            continue  # a marker cut short by a killed run: that test keeps its junit name
        if isinstance(nodeid, str) and nodeid:
            found[junit_name(nodeid)] = (nodeid, marker.parent)
    return found


def read_cases(path: Path, suite: str = "") -> list[JunitCase]:
    """Every test case of a junit.xml (`<testsuites>` or a bare `<testsuite>`)."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise JunitUnreadable(f"{path} is not valid junit XML ({exc})") from exc
    if root.tag not in ("testsuites", "testsuite"):
        raise JunitUnreadable(f"{path} has <{root.tag}> at its root, not <testsuites>")
    cases = []
    for element in root.iter("testcase"):
        outcome: Outcome = "passed"
        message = text = ""
        for child in element:
            tag_outcome = _TAGS.get(child.tag)
            if tag_outcome is None:
                continue
            # A failed teardown after a failure adds an <error>: the worse one counts first.
            if outcome == "passed" or _PROBLEMS.index(tag_outcome) < _PROBLEMS.index(outcome):
                outcome = tag_outcome
                message = child.get("message") or ""
                text = child.text or ""
        flaky = [child for child in element if child.tag in FLAKY_TAGS.values()]
        if outcome == "passed" and flaky:  # failed, then passed on retry
            outcome = "flaky"
            message = flaky[0].get("message") or ""
            text = flaky[0].findtext("stackTrace") or flaky[0].text or ""
        quarantined = _quarantined_outcome(element)
        if quarantined in get_args(Outcome):  # its own outcome, kept in a property
            outcome = cast(Outcome, quarantined)
            message = message.removeprefix(f"quarantined ({quarantined}): ")
        line = element.get("line")
        cases.append(
            JunitCase(
                classname=element.get("classname", ""),
                name=element.get("name", ""),
                seconds=float(element.get("time") or 0),
                outcome=outcome,
                message=message,
                text=text,
                suite=suite,
                file=element.get("file"),
                line=int(line) + 1 if line and line.isdigit() else None,  # junit's are 0-based
                quarantined=quarantined is not None,
            )
        )
    return cases


@dataclass
class JunitTotals:
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    seconds: float = 0.0
    cases: list[JunitCase] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return self.tests - self.failures - self.errors - self.skipped


def read_junit(path: Path) -> JunitTotals | None:
    """Totals and cases of a junit.xml; None when it is missing or not pytest's XML."""
    try:
        cases = read_cases(path)
        suites = _suites_of(ET.parse(path).getroot())
    except (OSError, JunitUnreadable, ET.ParseError):
        return None
    totals = JunitTotals(cases=cases)
    for suite in suites:
        totals.tests += int(suite.get("tests", 0))
        totals.failures += int(suite.get("failures", 0))
        totals.errors += int(suite.get("errors", 0))
        totals.skipped += int(suite.get("skipped", 0))
        totals.seconds += float(suite.get("time", 0) or 0)
    return totals


def write_merged(suites: Sequence[tuple[str, Path]], dest: Path) -> None:
    """One `<testsuites>` holding every shard's `<testsuite>`, renamed after its shard."""
    merged = ET.Element("testsuites")
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    seconds = 0.0
    for name, path in suites:
        for suite in _suites_of(ET.parse(path).getroot()):
            suite.set("name", name)
            for key in totals:
                totals[key] += int(suite.get(key, 0))
            seconds += float(suite.get("time") or 0)
            merged.append(suite)
    for key, value in totals.items():
        merged.set(key, str(value))
    merged.set("time", f"{seconds:.3f}")
    merged.set("name", "merged")
    ET.indent(merged)
    ET.ElementTree(merged).write(dest, encoding="utf-8", xml_declaration=True)


def add_attempts(xml: str, retried: dict[str, dict[str, Any]]) -> str:
    """pytest's junit.xml with the earlier attempts of retried tests added, Surefire's way.
    `retried`: junit name (`junit_name(nodeid)`) -> the test's results.jsonl entry (its
    `outcome` and `attempts`, each with `outcome`, `message` and `longrepr`)."""
    root = ET.fromstring(xml)
    for element in root.iter("testcase"):
        entry = retried.get(f"{element.get('classname', '')}::{element.get('name', '')}")
        if entry is None:
            continue
        tags = FLAKY_TAGS if entry.get("outcome") == "flaky" else RERUN_TAGS
        for attempt in entry.get("attempts") or []:
            tag = tags.get(str(attempt.get("outcome")), tags["failed"])
            message = str(attempt.get("message") or "")
            child = ET.SubElement(element, tag, message=message, type=_error_type(message))
            ET.SubElement(child, "stackTrace").text = str(attempt.get("longrepr") or message)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def mark_quarantined(xml: str, outcomes: dict[str, str]) -> str:
    """pytest's junit.xml with the quarantined tests marked. `outcomes`: junit name -> the
    test's outcome. Each gets the property `QUARANTINE_PROPERTY` (its outcome); a failure or
    error of one becomes `<skipped type="ci-stack.quarantined" message="quarantined (failed):
    ...">` holding the failure's text, and the suite's counts follow: readers of junit.xml
    (Surefire's, GitHub's test reporters) then agree with the run's verdict, which a
    quarantined test never fails, and `read_cases` gives the test's own outcome back."""
    root = ET.fromstring(xml)
    for suite in _suites_of(root):
        for element in suite.findall("testcase"):
            name = f"{element.get('classname', '')}::{element.get('name', '')}"
            outcome = outcomes.get(name)
            if outcome is None:
                continue
            properties = element.find("properties")
            if properties is None:
                properties = ET.Element("properties")
                element.insert(0, properties)
            ET.SubElement(properties, "property", name=QUARANTINE_PROPERTY, value=outcome)
            problems = [child for child in element if child.tag in ("failure", "error")]
            if not problems:
                continue
            first = problems[0]
            skipped = ET.Element(
                "skipped",
                type=QUARANTINE_TYPE,
                message=f"quarantined ({outcome}): {first.get('message') or ''}".rstrip(),
            )
            skipped.text = "\n\n".join(p.text or "" for p in problems).strip()
            element.insert(list(element).index(first), skipped)
            for problem in problems:
                element.remove(problem)
                key = "failures" if problem.tag == "failure" else "errors"
                suite.set(key, str(max(0, int(suite.get(key, 0)) - 1)))
            suite.set("skipped", str(int(suite.get("skipped", 0)) + 1))
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _quarantined_outcome(element: ET.Element) -> str | None:
    """The outcome a quarantined testcase keeps in its property; None when not quarantined."""
    for prop in element.iterfind("properties/property"):
        if prop.get("name") == QUARANTINE_PROPERTY:
            return prop.get("value") or ""
    return None


def _error_type(message: str) -> str:
    """`AssertionError` of "AssertionError: assert 0 >= 1"; `failure` when none is named."""
    head = message.split(":", 1)[0].strip()
    return head if head.replace(".", "").isidentifier() else "failure"


def count_outcomes(cases: Iterable[JunitCase]) -> dict[Outcome, int]:
    counts: dict[Outcome, int] = {"passed": 0, "failed": 0, "error": 0, "skipped": 0, "flaky": 0}
    for case in cases:
        counts[case.outcome] += 1
    return counts


def _suites_of(root: ET.Element) -> list[ET.Element]:
    return [root] if root.tag == "testsuite" else list(root.iter("testsuite"))


def _is_module_of(module: str, dotted_path: str) -> bool:
    return dotted_path == module or dotted_path.startswith(module + "/")


def _module_path(classname: str) -> str:
    # "tests.orchestrator.test_x.TestClass" -> "tests/orchestrator/test_x.py" (classes are
    # CamelCase by pytest's convention, modules are not)
    parts = classname.split(".")
    while len(parts) > 1 and parts[-1][:1].isupper():
        parts.pop()
    return "/".join(parts) + ".py"
