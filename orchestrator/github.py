"""GitHub Actions output: failure annotations and the job summary, without a reporter action.

- `github_annotations(source)`: one `::error file=...,line=...,title=<nodeid>::<message>`
  workflow command per failed test of a junit.xml (or of an artifacts folder, whose
  `tests/*/test.json` give the exact node ids), escaped as GitHub's toolkit does.
- `print_annotations(source)`: prints them when `GITHUB_ACTIONS=true`, else nothing.
- `mask_secrets(values)`: `::add-mask::<value>` for each (same condition; `mask_commands`
  the lines), printed when a run has made its secrets and before anything could print them.
- `write_job_summary(markdown, artifact_url)`: appends to `$GITHUB_STEP_SUMMARY` with every
  relative link turned into plain text (it would resolve against the run page and 404) and one
  absolute link to the uploaded artifact when its URL is known.

`python -m orchestrator github annotate PATH` / `summary FILE [--artifact-url URL]` run them
from a workflow step.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO

from orchestrator.artifacts.junit import JunitCase, evidence_markers, failure_location, read_cases

ANNOTATION_LIMIT = 50  # GitHub shows at most 50 error annotations per job (10 per step)
SUMMARY_LIMIT_BYTES = 1024 * 1024  # $GITHUB_STEP_SUMMARY's limit per step
_LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s]+)\)")
_ABSOLUTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|#)", re.IGNORECASE)
_MESSAGE_LIMIT = 4000
_PROBLEMS = ("failed", "error")


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
    """What one annotation says: where, which test, why."""

    path: str
    line: int
    title: str
    message: str


def github_annotations(
    source: Path | Sequence[JunitCase] | ReportedRun,
    *,
    nodeids: Mapping[str, str] | None = None,
) -> list[str]:
    """`::error` lines for the failed and errored tests of `source`.

    `source` is a junit.xml, an artifacts folder (its junit.xml, node ids from its
    `tests/*/test.json`, also below `shards/`), junit cases already read, or the evidence
    report's run data (`load_run(folder)`; its crash locations and node ids are used). `nodeids`
    maps a junit name (`classname::name`) to the node id used as the title; unmapped junit
    cases are titled by their junit name. Past `ANNOTATION_LIMIT` one `::warning` says how many
    more failed.
    """
    failures = _failures(source, nodeids)
    lines = []
    for failure in failures[:ANNOTATION_LIMIT]:
        properties = (
            f"file={escape_property(failure.path)},line={failure.line},"
            f"title={escape_property(failure.title)}"
        )
        lines.append(f"::error {properties}::{escape_data(failure.message[:_MESSAGE_LIMIT])}")
    if len(failures) > ANNOTATION_LIMIT:
        more = len(failures) - ANNOTATION_LIMIT
        lines.append(f"::warning::{more} more failed tests are not annotated; see the summary")
    return lines


def _failures(
    source: Path | Sequence[JunitCase] | ReportedRun, nodeids: Mapping[str, str] | None
) -> list[Failure]:
    if isinstance(source, Path):
        junit = source / "junit.xml" if source.is_dir() else source
        if nodeids is None and source.is_dir():
            markers = evidence_markers(source, below=True)
            nodeids = {name: nodeid for name, (nodeid, _) in markers.items()}
        cases: Sequence[JunitCase] = read_cases(junit) if junit.is_file() else []
    elif isinstance(source, Sequence):
        cases = source
    else:
        return [_from_report(test) for test in source.tests if test.outcome in _PROBLEMS]
    names = nodeids or {}
    failures = []
    for case in cases:
        if case.outcome not in _PROBLEMS:
            continue
        path, line = case.location()
        title = names.get(case.junit_name, case.junit_name)
        message = (case.message or case.text or case.outcome).strip()
        failures.append(Failure(path, line, _titled(title, case.outcome), message))
    return failures


def _from_report(test: ReportedTest) -> Failure:
    """Annotate the line of the test's own file that failed (the call into a page object,
    not the helper's inside), else where it crashed, else where the test is defined."""
    module = test.nodeid.split("::", 1)[0]
    traced = failure_location(test.longrepr, module.removesuffix(".py"))
    where = test.crash or test.location
    if traced is not None and traced[0].removeprefix("./") == module:
        position = traced
    elif where and where.rpartition(":")[2].isdigit():
        path, _, line = where.rpartition(":")
        position = (path, int(line))
    else:
        position = traced or (module, 1)
    message = (test.message or test.outcome).strip()
    return Failure(*position, _titled(test.nodeid, test.outcome), message)


def _titled(title: str, outcome: str) -> str:
    return f"{title} (error)" if outcome == "error" else title


def running_on_github(env: Mapping[str, str] | None = None) -> bool:
    return (env if env is not None else os.environ).get("GITHUB_ACTIONS") == "true"


def print_annotations(
    source: Path | Sequence[JunitCase] | ReportedRun,
    *,
    env: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
) -> int:
    """Print `github_annotations(source)` when running on GitHub Actions; how many printed."""
    if not running_on_github(env):
        return 0
    lines = github_annotations(source)
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


def job_summary_markdown(markdown: str, artifact_url: str | None) -> str:
    """`markdown` fit for the job summary: relative links become their plain paths (as links
    they would resolve against the run page), absolute ones stay; one line links the artifact."""

    def unlink(match: re.Match[str]) -> str:
        target = match.group(2)
        if _ABSOLUTE.match(target):
            return match.group(0)
        return f"`{target}`"  # where it is inside the artifact, as plain text

    body = _LINK.sub(unlink, markdown).rstrip() + "\n"
    if artifact_url:
        evidence = (
            f"Evidence: [download the artifact]({artifact_url}) and open `index.html`; "
            "the paths above are inside it."
        )
    else:
        evidence = "Evidence: the paths above are in this run's artifacts folder (no link known)."
    text = body + "\n" + evidence + "\n"
    if len(text.encode("utf-8")) > SUMMARY_LIMIT_BYTES:
        cut = text.encode("utf-8")[: SUMMARY_LIMIT_BYTES - 4096].decode("utf-8", "ignore")
        text = cut + "\n\n… (summary cut at GitHub's 1 MiB limit)\n\n" + evidence + "\n"
    return text


def write_job_summary(
    markdown: str, artifact_url: str | None, *, env: Mapping[str, str] | None = None
) -> Path | None:
    """Append `job_summary_markdown(...)` to `$GITHUB_STEP_SUMMARY`; None when it is unset."""
    target = (env if env is not None else os.environ).get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(job_summary_markdown(markdown, artifact_url))
    return path
