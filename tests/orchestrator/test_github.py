"""orchestrator.github: annotations from a real failing pytest run, the job summary's links."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from orchestrator import github, merge
from orchestrator.artifacts.junit import JunitCase
from orchestrator.artifacts.text import fence
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


def _cases(count: int) -> list[JunitCase]:
    return [
        JunitCase("tests.test_x", f"test_{i}", 0.0, "failed", message=f"boom {i}")
        for i in range(count)
    ]


def test_fifteen_failures_give_ten_errors_and_one_notice() -> None:
    lines = github.github_annotations(_cases(15))

    assert github.ANNOTATION_LIMIT == 10  # what GitHub shows per step; the rest it drops
    errors = [line for line in lines if line.startswith("::error ")]
    assert len(errors) == 10 and len(lines) == 11
    # Without labels: the run's own failure order.
    assert lines[0] == "::error file=tests/test_x.py,line=1,title=tests.test_x%3A%3Atest_0::boom 0"
    assert [line.rsplit("::", 1)[1] for line in errors] == [f"boom {i}" for i in range(10)]
    assert lines[-1] == (
        "::notice title=5 more failed tests::5 more failed tests are not annotated (GitHub "
        "shows 10 of each kind per step): the job summary lists every one, as does summary.md "
        "in the artifact"
    )


def test_ten_failures_need_no_notice() -> None:
    lines = github.github_annotations(_cases(10))
    assert len(lines) == 10 and all(line.startswith("::error ") for line in lines)


def test_labels_put_new_failures_first_then_failing_before_then_known_flaky() -> None:
    cases = _cases(14)
    labels: dict[str, github.FailureLabel] = {
        "tests.test_x::test_0": "known flaky",
        "tests.test_x::test_1": "failing before",
        "tests.test_x::test_2": "new",
        "tests.test_x::test_3": "known flaky",
        "tests.test_x::test_4": "failing before",
        "tests.test_x::test_13": "new",
    }  # the others: no history yet

    lines = github.github_annotations(cases, labels=labels)

    shown = [line.rsplit("::", 1)[1] for line in lines if line.startswith("::error ")]
    assert shown == [f"boom {i}" for i in (2, 13, 5, 6, 7, 8, 9, 10, 11, 12)]
    assert lines[-1].startswith("::notice title=4 more failed tests::")  # 1, 4, 0, 3 left out


def test_print_annotations_passes_labels_on(failed_run: Path) -> None:
    out = io.StringIO()
    labels: dict[str, github.FailureLabel] = {
        "test_sample.py::TestGroup::test_in_class": "new",
        "test_sample.py::test_calls_helper": "known flaky",
    }
    env = {"GITHUB_ACTIONS": "true"}
    assert github.print_annotations(failed_run, labels=labels, env=env, stream=out) == 2
    first, second = out.getvalue().splitlines()
    assert "title=test_sample.py%3A%3ATestGroup%3A%3Atest_in_class::" in first
    assert "title=test_sample.py%3A%3Atest_calls_helper::" in second


def _long_summary(failures: int, text_lines: int) -> str:
    """A summary.md shaped like ours: each failure's text in a fence inside <details>."""
    parts = ["# e2e run: FAILED", "", f"## Failures ({failures})", ""]
    for number in range(1, failures + 1):
        text = "\n".join(f"E   line {i} of failure {number} [x](y) ```" for i in range(text_lines))
        parts += [
            f"### {number}. `t::test_{number}` (failed)",
            "",
            f"Evidence: [tests/t-{number}/](tests/t-{number}/)",
            "",
            "<details>",
            f"<summary>boom {number}</summary>",
            "",
            fence(text),
            "",
            "</details>",
            "",
        ]
    return "\n".join(parts) + "\nFiles: [index.html](index.html)\n"


def test_a_summary_over_the_limit_is_cut_at_a_line_and_says_where_the_rest_is() -> None:
    markdown = _long_summary(failures=80, text_lines=400)  # ~1.2 MiB
    assert len(markdown.encode()) > github.SUMMARY_LIMIT_BYTES
    url = "https://github.com/o/r/actions/runs/1/artifacts/2"

    text = github.job_summary_markdown(markdown, url)

    assert len(text.encode()) < github.SUMMARY_LIMIT_BYTES
    assert text.startswith("# e2e run: FAILED\n")
    cut = re.search(r"the last (\d+) of (\d+) lines are left out", text)
    assert cut is not None
    assert int(cut[2]) == len(markdown.splitlines())
    kept = int(cut[2]) - int(cut[1])
    assert (
        text.splitlines()[:kept]
        == github.job_summary_markdown("\n".join(markdown.splitlines()[:kept]), url).splitlines()[
            :kept
        ]
    )  # whole lines, links made plain as everywhere else
    assert f"The whole summary is `summary.md` in [the artifact]({url})." in text
    assert text.rstrip().endswith(f"[download the artifact]({url}) and open `index.html`; "
                                  "the paths above are inside it.")  # fmt: skip
    # The note is rendered as text: the code block and <details> it cut into are closed.
    rendered = MarkdownIt("commonmark").render(text)
    assert "<strong>Cut here to stay under GitHub" in rendered
    assert rendered.count("<details>") == rendered.count("</details>")


def test_a_summary_under_the_limit_is_not_cut() -> None:
    markdown = _long_summary(failures=3, text_lines=5)
    text = github.job_summary_markdown(markdown, None)
    assert "Cut here" not in text
    assert text.count("```") == markdown.count("```")


def test_links_inside_a_failures_code_block_stay_as_the_test_printed_them() -> None:
    text = github.job_summary_markdown(_long_summary(failures=2, text_lines=3), None)
    assert "E   line 0 of failure 1 [x](y) ```" in text  # failure text is never rewritten
    assert "Evidence: `tests/t-1/`" in text and "](tests/" not in text


def test_write_job_summary_leaves_room_for_what_the_step_already_wrote(tmp_path: Path) -> None:
    target = tmp_path / "step_summary.md"
    target.write_text("x" * 300_000 + "\n")
    env = {"GITHUB_STEP_SUMMARY": str(target)}

    github.write_job_summary(_long_summary(failures=60, text_lines=400), None, env=env)

    assert target.stat().st_size < github.SUMMARY_LIMIT_BYTES
    assert "the last" in target.read_text() and "in the artifact." in target.read_text()


def test_a_small_limit_still_ends_with_the_note_and_the_evidence_line() -> None:
    text = github.job_summary_markdown(_long_summary(3, 50), None, limit=4096)
    assert len(text.encode()) <= 4096
    assert "Cut here to stay under" in text and text.rstrip().endswith("(no link known).")


def test_a_leg_records_its_name_run_and_attempt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "artifacts" / "e2e-local-2"  # not there yet: the run never started
    monkeypatch.setenv("GITHUB_RUN_ID", "4242")
    monkeypatch.setenv("GITHUB_RUN_ATTEMPT", "2")

    assert cli_main(["github", "leg", str(folder), "--name", "e2e-leg-local-2"]) == 0

    assert capsys.readouterr().out == "leg e2e-leg-local-2: run 4242, attempt 2\n"
    assert json.loads((folder / github.LEG_FILE).read_text()) == {
        "leg": "e2e-leg-local-2",
        "run_id": "4242",
        "run_attempt": 2,
    }
    assert github.read_leg(folder) == github.LegRecord("e2e-leg-local-2", "4242", 2)
    assert github.read_leg(tmp_path) is None
    assert github.record_leg(tmp_path / "x", "leg", env={}).attempt == 1
    (folder / github.LEG_FILE).write_text("{not json")
    assert github.read_leg(folder) is None
    file = tmp_path / "file"
    file.write_text("")
    assert cli_main(["github", "leg", str(file), "--name", "x"]) == 2
    assert "is not a folder" in capsys.readouterr().err


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
