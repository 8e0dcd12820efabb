"""junit.xml read into totals and test cases: the fallback when no results.jsonl exists."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class JunitCase:
    classname: str
    name: str
    seconds: float
    outcome: str  # passed | failed | error | skipped
    message: str
    text: str
    file: str | None
    line: int | None


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
    """Totals and cases of a junit.xml; None when it is missing or not well-formed."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    totals = JunitTotals()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    for suite in suites:
        totals.tests += int(suite.get("tests", 0))
        totals.failures += int(suite.get("failures", 0))
        totals.errors += int(suite.get("errors", 0))
        totals.skipped += int(suite.get("skipped", 0))
        totals.seconds += float(suite.get("time", 0) or 0)
        totals.cases += [_case(element) for element in suite.iter("testcase")]
    return totals


def _case(element: ET.Element) -> JunitCase:
    outcome, problem = "passed", None
    for tag in ("failure", "error", "skipped"):
        found = element.find(tag)
        if found is not None:
            outcome, problem = ("failed" if tag == "failure" else tag), found
            break
    line = element.get("line")
    return JunitCase(
        classname=element.get("classname", ""),
        name=element.get("name", ""),
        seconds=float(element.get("time", 0) or 0),
        outcome=outcome,
        message=(problem.get("message") or "") if problem is not None else "",
        text=(problem.text or "") if problem is not None else "",
        file=element.get("file"),
        line=int(line) + 1 if line and line.isdigit() else None,
    )
