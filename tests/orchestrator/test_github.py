"""orchestrator.github: annotations from a real failing pytest run, the job summary's links."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator import github, merge
from orchestrator.artifacts.junit import JunitCase
from orchestrator.cli import main as cli_main

pytest_plugins = ["pytester"]

FAILING = (
    "def helper(value):\n"
    "    assert value == 'expected', 'bad value: 100% wrong,\\nsecond line'\n\n"
    "def test_calls_helper():\n"
    "    helper('actual')\n\n"
    "class TestGroup:\n"
    "    def test_in_class(self):\n"
    "        assert [1] == [2]\n\n"
    "def test_passes():\n"
    "    pass\n"
)


@pytest.fixture
def failed_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An artifacts folder of a real run: junit.xml and the plugin's tests/*/test.json."""
    folder = pytester.path / "artifacts"
    monkeypatch.setenv("STACK_ARTIFACTS_DIR", str(folder))
    monkeypatch.delenv("STACK_SHARD", raising=False)
    pytester.makepyfile(test_sample=FAILING)
    pytester.runpytest("-p", "no:cacheprovider", "-p", "no:playwright").assert_outcomes(
        passed=1, failed=2
    )
    return folder


def test_annotations_name_file_line_and_node_id(failed_run: Path) -> None:
    lines = github.github_annotations(failed_run)

    assert len(lines) == 2
    helper, in_class = sorted(lines)
    # The failure is reported at the test file's line inside the helper (line 2), titled by
    # the node id with `:` and `,` escaped; the message keeps `%` and newlines escaped.
    assert helper.startswith(
        "::error file=test_sample.py,line=2,title=test_sample.py%3A%3Atest_calls_helper::"
    )
    assert "bad value: 100%25 wrong,%0A  second line" in helper
    assert "\n" not in helper
    assert in_class.startswith(
        "::error file=test_sample.py,line=9,"
        "title=test_sample.py%3A%3ATestGroup%3A%3Atest_in_class::"
    )


def test_annotations_from_a_bare_junit_file_use_junit_names(failed_run: Path) -> None:
    lines = github.github_annotations(failed_run / "junit.xml")
    assert any("title=test_sample%3A%3Atest_calls_helper::" in line for line in lines)


def test_escaping_follows_githubs_rules() -> None:
    assert github.escape_data("a%b\r\nc:d,e") == "a%25b%0D%0Ac:d,e"
    assert github.escape_property("a%b\r\nc:d,e") == "a%25b%0D%0Ac%3Ad%2Ce"


def test_annotations_are_printed_only_on_github(failed_run: Path) -> None:
    off, on = io.StringIO(), io.StringIO()
    assert github.print_annotations(failed_run, env={}, stream=off) == 0
    assert github.print_annotations(failed_run, env={"GITHUB_ACTIONS": "true"}, stream=on) == 2
    assert off.getvalue() == ""
    assert on.getvalue().count("::error ") == 2


def test_too_many_failures_end_in_one_warning() -> None:
    cases = [
        JunitCase("tests.test_x", f"test_{i}", 0.0, "failed", message="boom")
        for i in range(github.ANNOTATION_LIMIT + 3)
    ]
    lines = github.github_annotations(cases)
    assert len(lines) == github.ANNOTATION_LIMIT + 1
    assert lines[0] == "::error file=tests/test_x.py,line=1,title=tests.test_x%3A%3Atest_0::boom"
    assert lines[-1] == "::warning::3 more failed tests are not annotated; see the summary"


def test_job_summary_has_no_relative_links() -> None:
    markdown = (
        "# e2e run: FAILED\n"
        "- `t::x`: boom — evidence: [t-x](tests/t-x/)\n"
        "Logs: [logs/](logs/) · [docs](https://example.org/docs) · [top](#top)\n"
    )
    url = "https://github.com/o/r/actions/runs/1/artifacts/2"
    text = github.job_summary_markdown(markdown, url)

    assert "](tests/" not in text and "](logs/" not in text
    assert "evidence: `tests/t-x/`" in text
    assert "[docs](https://example.org/docs)" in text and "[top](#top)" in text
    assert f"[download the artifact]({url})" in text
    without = github.job_summary_markdown(markdown, None)
    assert "this run's artifacts folder (no link known)" in without


def test_write_job_summary_appends_to_the_step_summary_file(tmp_path: Path) -> None:
    target = tmp_path / "step_summary.md"
    target.write_text("earlier step\n")
    env = {"GITHUB_STEP_SUMMARY": str(target)}
    assert github.write_job_summary("[a](a.txt)\n", None, env=env) == target
    assert target.read_text().startswith("earlier step\n`a.txt`\n")
    assert github.write_job_summary("x", None, env={}) is None


def test_cli_writes_the_summary_with_the_artifact_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("see [index.html](index.html)\n")
    step = tmp_path / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    url = "https://github.com/o/r/actions/runs/1/artifacts/9"
    assert cli_main(["github", "summary", str(summary), "--artifact-url", url]) == 0
    assert step.read_text() == github.job_summary_markdown(summary.read_text(), url)


def test_cli_annotate_prints_on_github(
    failed_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert cli_main(["github", "annotate", str(failed_run)]) == 0
    assert capsys.readouterr().out.count("::error file=test_sample.py,") == 2
    assert cli_main(["github", "annotate", str(failed_run / "nope")]) == 2
    assert json.loads((next(failed_run.glob("tests/*/test.json"))).read_text())["nodeid"]


@dataclass(frozen=True)
class _Reported:
    """The fields of the evidence report's TestResult that annotations read."""

    nodeid: str
    outcome: str
    message: str = ""
    crash: str | None = None
    location: str | None = None
    longrepr: str = ""


@dataclass(frozen=True)
class _Run:
    tests: list[_Reported]


def test_annotations_from_the_reports_run_data_use_its_crash_location() -> None:
    run = _Run(
        [
            _Reported("e2e/test_a.py::test_x", "failed", "boom", crash="e2e/test_a.py:17"),
            _Reported("e2e/test_a.py::test_y", "error", "setup broke", location="e2e/test_a.py:20"),
            _Reported("e2e/test_b.py::test_z", "failed", "no location"),
            _Reported("e2e/test_b.py::test_w", "failed", "traced", longrepr="e2e/test_b.py:9: E"),
            _Reported("e2e/test_a.py::test_ok", "passed"),
        ]
    )
    assert github.github_annotations(run) == [
        "::error file=e2e/test_a.py,line=17,title=e2e/test_a.py%3A%3Atest_x::boom",
        "::error file=e2e/test_a.py,line=20,title=e2e/test_a.py%3A%3Atest_y (error)::setup broke",
        "::error file=e2e/test_b.py,line=1,title=e2e/test_b.py%3A%3Atest_z::no location",
        "::error file=e2e/test_b.py,line=9,title=e2e/test_b.py%3A%3Atest_w::traced",
    ]


def test_a_failure_inside_a_helper_is_annotated_at_the_tests_own_line() -> None:
    traceback = (
        "e2e/test_a.py:19: in test_x\n    expect_status(detail.status)\n"
        "e2e/pages.py:35: in expect_status\n    expect(badge).to_have_attribute(...)\nE   boom"
    )
    run = _Run([_Reported("e2e/test_a.py::test_x", "failed", "boom", crash="e2e/pages.py:35",
                          longrepr=traceback)])  # fmt: skip

    assert github.github_annotations(run) == [
        "::error file=e2e/test_a.py,line=19,title=e2e/test_a.py%3A%3Atest_x::boom",
    ]


def test_annotations_from_load_run_when_the_report_is_installed(failed_run: Path) -> None:
    api = merge.report_api()
    if api is None:
        pytest.skip("the evidence report is not installed")
    lines = github.github_annotations(api.load_run(failed_run))
    assert len(lines) == 2
    assert all(line.startswith("::error file=test_sample.py,line=") for line in lines)
