"""GitHub Actions output: failure annotations and the job summary, without a reporter action.

- `github_annotations(source)`: one `::error file=...,line=...,title=<nodeid>::<message>`
  workflow command per failed test of a junit.xml (or of an artifacts folder, whose
  `tests/*/test.json` give the exact node ids), escaped as GitHub's toolkit does; at most
  `ANNOTATION_LIMIT` (GitHub shows 10 per step and silently drops the rest), new failures
  first, then one `::notice` saying how many more the job summary lists.
- `print_annotations(source)`: prints them when `GITHUB_ACTIONS=true`, else nothing.
- `mask_secrets(values)`: `::add-mask::<value>` for each (same condition; `mask_commands`
  the lines), printed when a run has made its secrets and before anything could print them.
- `write_job_summary(markdown, artifact_url)`: appends to `$GITHUB_STEP_SUMMARY` with every
  relative link turned into plain text (it would resolve against the run page and 404) and one
  absolute link to the uploaded artifact when its URL is known; cut to stay under GitHub's
  1 MiB per step, with a line saying what was cut and that summary.md has all of it.
- `record_leg(folder, name)`: `ci-leg.json` beside a CI leg's artifacts (the leg's name, run
  id and run attempt), so that `merge` keeps each leg's latest attempt after a re-run.

`python -m orchestrator github annotate PATH` / `summary FILE [--artifact-url URL]` /
`leg FOLDER --name NAME` run them from a workflow step.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO

from orchestrator.artifacts.junit import JunitCase, evidence_markers, failure_location, read_cases
from orchestrator.artifacts.layout import JUNIT_FILE, LEG_FILE, SUMMARY_FILE
from orchestrator.history import Label

# GitHub shows at most 10 annotations of each kind (error, warning, notice) per step and 50
# per job; the rest are dropped without a word. So: 10 errors, then one notice.
ANNOTATION_LIMIT = 10
SUMMARY_LIMIT_BYTES = 1024 * 1024  # $GITHUB_STEP_SUMMARY's limit per step (the whole file)
SUMMARY_MARGIN_BYTES = 1024  # kept free below the limit
# What an annotated test's outcome becomes; a flaky test (failed, then passed on retry) is a
# warning. Each kind gets its own ANNOTATION_LIMIT per step.
ANNOTATED_OUTCOMES: Mapping[str, str] = {"failed": "error", "error": "error", "flaky": "warning"}
# A failure's label from the run history (orchestrator.history; unlabelled without one).
# Annotated in this order, the run's own failure order within a label: only 10 are shown.
FailureLabel = Label
LABEL_ORDER: Mapping[FailureLabel | None, int] = {
    "new": 0,
    None: 1,  # no history: as likely new as not
    "failing before": 2,
    "known flaky": 3,
}
_LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s]+)\)")
_ABSOLUTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|#)", re.IGNORECASE)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_MESSAGE_LIMIT = 4000


def escape_data(text: str) -> str:
    """A workflow command's message: `%`, CR and LF percent-encoded."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value: as data, plus `:` and `,`."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


class ReportedTest(Protocol):
    """A test as the evidence report reads it (`orchestrator.artifacts.TestResult`)."""

    @property
    def nodeid(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def crash(self) -> str | None: ...  # file:line where it failed
    @property
    def location(self) -> str | None: ...  # file:line of the test function
    @property
    def longrepr(self) -> str: ...  # the failure's text


class ReportedRun(Protocol):
    """A run as the evidence report reads it (`orchestrator.artifacts.RunData`)."""

    @property
    def tests(self) -> Sequence[ReportedTest]: ...


@dataclass(frozen=True)
class Failure:
    """What one annotation says: where, which test, why; and what kind it is."""

    path: str
    line: int
    title: str
    message: str
    test: str = ""  # the node id (or junit name) that `labels` are keyed by
    outcome: str = "failed"
    quarantined: bool = False  # a quarantined test's failure is a warning: it fails nothing

    @property
    def command(self) -> str:
        return "warning" if self.quarantined else ANNOTATED_OUTCOMES.get(self.outcome, "error")


def github_annotations(
    source: Path | Sequence[JunitCase] | ReportedRun,
    *,
    nodeids: Mapping[str, str] | None = None,
    labels: Mapping[str, FailureLabel] | None = None,
) -> list[str]:
    """At most `ANNOTATION_LIMIT` `::error` lines for the failed and errored tests of
    `source` (and as many `::warning` lines for its flaky ones and its quarantined ones that
    failed), then one `::notice` saying how many more are listed in the job summary.

    `source` is a junit.xml, an artifacts folder (its junit.xml, node ids from its
    `tests/*/test.json`, also below `shards/`), junit cases already read, or the evidence
    report's run data (`load_run(folder)`; its crash locations and node ids are used). `nodeids`
    maps a junit name (`classname::name`) to the node id used as the title; unmapped junit
    cases are titled by their junit name. `labels` (node id -> label, from the run history)
    order them: new failures first, then unlabelled, failing before, known flaky; the run's
    failure order within each.
    """
    return annotation_lines(_failures(source, nodeids), labels)


def annotation_lines(
    failures: Sequence[Failure], labels: Mapping[str, FailureLabel] | None = None
) -> list[str]:
    """The workflow commands for `failures`: per command (error; warning once retries mark
    flaky tests) the first `ANNOTATION_LIMIT` in label order, then one notice for the rest."""
    known = labels or {}
    ranked = sorted(failures, key=lambda failure: LABEL_ORDER[known.get(failure.test)])
    lines: list[str] = []
    shown: Counter[str] = Counter()
    left_out: Counter[str] = Counter()
    for failure in ranked:
        if shown[failure.command] >= ANNOTATION_LIMIT:
            left_out[failure.command] += 1
            continue
        shown[failure.command] += 1
        properties = (
            f"file={escape_property(failure.path)},line={failure.line},"
            f"title={escape_property(failure.title)}"
        )
        message = escape_data(failure.message[:_MESSAGE_LIMIT])
        lines.append(f"::{failure.command} {properties}::{message}")
    if left_out:
        lines.append(overflow_notice(left_out))
    return lines


def overflow_notice(left_out: Mapping[str, int]) -> str:
    """One `::notice`: how many tests were not annotated (per command), and where they are."""
    kinds = {"error": "failed tests", "warning": "flaky or quarantined tests"}
    counts = " and ".join(f"{n} more {kinds.get(c, c + 's')}" for c, n in left_out.items())
    message = (
        f"{counts} are not annotated (GitHub shows {ANNOTATION_LIMIT} of each kind per step): "
        f"the job summary lists every one, as does {SUMMARY_FILE} in the artifact"
    )
    return f"::notice title={escape_property(counts)}::{escape_data(message)}"


def _failures(
    source: Path | Sequence[JunitCase] | ReportedRun, nodeids: Mapping[str, str] | None
) -> list[Failure]:
    if isinstance(source, Path):
        junit = source / JUNIT_FILE if source.is_dir() else source
        if nodeids is None and source.is_dir():
            markers = evidence_markers(source, below=True)
            nodeids = {name: nodeid for name, (nodeid, _) in markers.items()}
        cases: Sequence[JunitCase] = read_cases(junit) if junit.is_file() else []
    elif isinstance(source, Sequence):
        cases = source
    else:
        return [_from_report(test) for test in source.tests if test.outcome in ANNOTATED_OUTCOMES]
    names = nodeids or {}
    failures = []
    for case in cases:
        if case.outcome not in ANNOTATED_OUTCOMES:
            continue
        path, line = case.location()
        test = names.get(case.junit_name, case.junit_name)
        message = (case.message or case.text or case.outcome).strip()
        title = _titled(test, case.outcome, case.quarantined)
        failures.append(Failure(path, line, title, message, test, case.outcome, case.quarantined))
    return failures


def _from_report(test: ReportedTest) -> Failure:
    """Annotate the line of the test's own file that failed (the call into a page object,
    not the helper's inside), else where it crashed, else where the test is defined."""
    module = test.nodeid.split("::", 1)[0]
    # A flaky test passed at last: its first failed attempt says where and why it failed.
    failed = next(iter(getattr(test, "attempts", None) or []), None) or test
    traced = failure_location(failed.longrepr, module.removesuffix(".py"))
    where = failed.crash or test.location
    if traced is not None and traced[0].removeprefix("./") == module:
        position = traced
    elif where and where.rpartition(":")[2].isdigit():
        path, _, line = where.rpartition(":")
        position = (path, int(line))
    else:
        position = traced or (module, 1)
    message = (failed.message or test.outcome).strip()
    quarantined = getattr(test, "quarantined", False) is True
    title = _titled(test.nodeid, test.outcome, quarantined)
    return Failure(*position, title, message, test.nodeid, test.outcome, quarantined)


def _titled(title: str, outcome: str, quarantined: bool = False) -> str:
    if quarantined:
        return f"{title} ({outcome}, quarantined)"
    return f"{title} ({outcome})" if outcome in ("error", "flaky") else title


def running_on_github(env: Mapping[str, str] | None = None) -> bool:
    return (env if env is not None else os.environ).get("GITHUB_ACTIONS") == "true"


def print_annotations(
    source: Path | Sequence[JunitCase] | ReportedRun,
    *,
    labels: Mapping[str, FailureLabel] | None = None,
    env: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
) -> int:
    """Print `github_annotations(source)` when running on GitHub Actions; how many printed."""
    if not running_on_github(env):
        return 0
    lines = github_annotations(source, labels=labels)
    out = stream or sys.stdout
    for line in lines:
        out.write(line + "\n")
    out.flush()
    return len(lines)


def mask_commands(secrets: Iterable[str], *, env: Mapping[str, str] | None = None) -> list[str]:
    """`::add-mask::<value>` for each secret when running on GitHub Actions, else none."""
    if not running_on_github(env):
        return []
    return [f"::add-mask::{escape_data(value)}" for value in dict.fromkeys(secrets) if value]


def mask_secrets(
    secrets: Iterable[str], *, env: Mapping[str, str] | None = None, stream: TextIO | None = None
) -> int:
    """Print `mask_commands(secrets)`, so that the job log shows `***` wherever a secret is
    printed later (by us, a test, or a service); how many printed. Call it before anything
    that could print them, at the start of a line."""
    lines = mask_commands(secrets, env=env)
    out = stream or sys.stdout
    for line in lines:
        out.write(line + "\n")
    out.flush()
    return len(lines)


def job_summary_markdown(
    markdown: str, artifact_url: str | None, *, limit: int = SUMMARY_LIMIT_BYTES
) -> str:
    """`markdown` fit for the job summary: relative links become their plain paths (as links
    they would resolve against the run page), absolute ones stay; one line links the artifact.
    At most `limit` bytes less a margin: past it, whole lines are cut (an open code block or
    `<details>` closed) and a line says how much and where the whole summary is."""

    def unlink(match: re.Match[str]) -> str:
        target = match.group(2)
        if _ABSOLUTE.match(target):
            return match.group(0)
        return f"`{target}`"  # where it is inside the artifact, as plain text

    body = "".join(
        line if fenced else _LINK.sub(unlink, line)
        for line, fenced in _fenced_lines(markdown.splitlines(keepends=True))
    )
    body = body.rstrip() + "\n"
    if artifact_url:
        evidence = (
            f"Evidence: [download the artifact]({artifact_url}) and open `index.html`; "
            "the paths above are inside it."
        )
    else:
        evidence = "Evidence: the paths above are in this run's artifacts folder (no link known)."
    ending = "\n" + evidence + "\n"
    budget = limit - SUMMARY_MARGIN_BYTES - len(ending.encode("utf-8"))
    return fit_summary(body, budget, artifact_url) + ending


def fit_summary(text: str, budget: int, artifact_url: str | None = None) -> str:
    """`text` when it takes at most `budget` bytes (UTF-8); else its first whole lines, with
    any code block or `<details>` left open closed, and a line saying what was cut and where
    the whole summary is."""
    if len(text.encode("utf-8")) <= budget:
        return text
    lines = text.splitlines(keepends=True)
    where = f"[the artifact]({artifact_url})" if artifact_url else "the artifact"
    kept = len(lines)
    while True:
        # Each round drops at least as many bytes as the result is over; a few rounds at most.
        closing = _closing(lines[:kept])
        cut = len(lines) - kept
        note = (
            f"\n**Cut here to stay under GitHub's 1 MiB job summary limit:** the last {cut} "
            f"of {len(lines)} lines are left out. The whole summary is `{SUMMARY_FILE}` in "
            f"{where}.\n"
        )
        head = "".join(lines[:kept])
        over = len((head + closing + note).encode("utf-8")) - budget
        if over <= 0 or kept == 0:
            return head + closing + note
        while kept > 0 and over > 0:
            kept -= 1
            over -= len(lines[kept].encode("utf-8"))


def _fenced_lines(lines: Iterable[str]) -> Iterator[tuple[str, bool]]:
    """Each line, and whether it is inside a fenced code block (its fences included)."""
    fence: str | None = None
    for raw in lines:
        match = _FENCE.match(raw.rstrip("\n"))
        if fence is None:
            if match:
                fence = match.group(1)
            yield raw, fence is not None
        else:
            if match and _closes(match, fence):
                fence = None
            yield raw, True


def _closing(lines: Sequence[str]) -> str:
    """What closes the code block and the `<details>` elements `lines` leave open."""
    fence: str | None = None
    details = 0
    for raw in lines:
        line = raw.rstrip("\n")
        match = _FENCE.match(line)
        if fence is None:
            if match:
                fence = match.group(1)
            elif line.strip() == "<details>":
                details += 1
            elif line.strip() == "</details>":
                details = max(0, details - 1)
        elif match and _closes(match, fence):
            fence = None
    closing = f"{fence}\n" if fence else ""
    return closing + "\n</details>\n" * details


def _closes(match: re.Match[str], fence: str) -> bool:
    """A fence line closes `fence`: the same character, at least as long, nothing after."""
    marker, rest = match.group(1), match.group(2)
    return marker[0] == fence[0] and len(marker) >= len(fence) and not rest.strip()


def write_job_summary(
    markdown: str, artifact_url: str | None, *, env: Mapping[str, str] | None = None
) -> Path | None:
    """Append `job_summary_markdown(...)` to `$GITHUB_STEP_SUMMARY`, within what is left of
    the step's 1 MiB; None when it is unset."""
    target = (env if env is not None else os.environ).get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    used = path.stat().st_size if path.is_file() else 0
    text = job_summary_markdown(markdown, artifact_url, limit=SUMMARY_LIMIT_BYTES - used)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)
    return path


@dataclass(frozen=True)
class LegRecord:
    """One CI leg's artifacts: which leg, and which attempt of the workflow run made them."""

    name: str
    run_id: str = ""
    attempt: int = 1

    def to_json(self) -> dict[str, object]:
        return {"leg": self.name, "run_id": self.run_id, "run_attempt": self.attempt}


def record_leg(folder: Path, name: str, *, env: Mapping[str, str] | None = None) -> LegRecord:
    """Write `LEG_FILE` into `folder` (made if missing): the leg's name and the run's id and
    attempt (`GITHUB_RUN_ID`, `GITHUB_RUN_ATTEMPT`; 1 when unset)."""
    values = env if env is not None else os.environ
    attempt = values.get("GITHUB_RUN_ATTEMPT", "1")
    record = LegRecord(
        name, values.get("GITHUB_RUN_ID", ""), int(attempt) if attempt.isdigit() else 1
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LEG_FILE).write_text(json.dumps(record.to_json(), indent=2) + "\n", "utf-8")
    return record


def read_leg(folder: Path) -> LegRecord | None:
    """The `LEG_FILE` of an artifacts folder; None when it has none (or it is unreadable)."""
    try:
        data = json.loads((folder / LEG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not str(data.get("leg") or ""):
        return None
    attempt = data.get("run_attempt")
    return LegRecord(
        str(data["leg"]),
        str(data.get("run_id") or ""),
        attempt if isinstance(attempt, int) and attempt >= 1 else 1,
    )
