"""`--repeat-each N`: real inner pytest sessions (pytester, in a subprocess) against a "warm
stack" (STACK_BACKEND_URL set, never called), which finish their own folder: every repeat is
its own test (node id, folder, test id), and the report and summary group them."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import util
from orchestrator.artifacts.repeats import group_repeats
from orchestrator.artifacts.results import load_run
from orchestrator.cli import build_parser
from orchestrator.cli.options import stack_config
from orchestrator.util import base_nodeid, split_repeat
from tests.fixtures.plugin_session import results_by_nodeid, run_session, warm_session

pytest_plugins = ["pytester"]

SUITE = """
import os
from pathlib import Path

import pytest


def calls(name):
    # Repeats run side by side under xdist: claim the call number by creating its file
    # exclusively, so two workers never read the same count.
    n = 1
    while True:
        try:
            (Path(os.environ["COUNTERS"]) / f"{name}-{n}").touch(exist_ok=False)
            return n
        except FileExistsError:
            n += 1


def test_second_call_fails(request, test_id):
    n = calls("second")
    (Path(os.environ["COUNTERS"]) / f"id-{n}").write_text(test_id)
    assert n != 2, f"call {n} fails"


@pytest.mark.parametrize("browser", ["chromium", "firefox"])
def test_param(browser):
    pass
"""
TEST = "test_suite.py::test_second_call_fails"


@pytest.fixture
def folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pytester: pytest.Pytester) -> Path:
    return warm_session(monkeypatch, tmp_path, pytester, SUITE)


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_each_repeat_is_its_own_test_and_the_report_gives_the_pass_rate(
    pytester: pytest.Pytester, folder: Path, tmp_path: Path, xdist: list[str]
) -> None:
    result = run_session(pytester, folder, "--repeat-each", "3", "-k", "second", *xdist)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2, failed=1)
    found = results_by_nodeid(folder)
    assert sorted(found) == [f"{TEST}[repeat-{k}of3]" for k in (1, 2, 3)]
    failed = [nodeid for nodeid, entry in found.items() if entry["outcome"] == "failed"]
    assert len(failed) == 1
    # Own test ids (X-Test-Id: each repeat's log records are sliced apart) and folders
    ids = {(tmp_path / "counters" / f"id-{n}").read_text() for n in (1, 2, 3)}
    assert ids == {entry["test_id"] for entry in found.values()} and len(ids) == 3
    assert len({util.test_slug(nodeid) for nodeid in found}) == 3
    assert (folder / "tests" / util.test_slug(failed[0]) / "test.json").is_file()
    # Grouped: one test, 2 of 3 passed
    [group] = group_repeats(load_run(folder).tests)
    assert (group.nodeid, group.rate) == (TEST, "2/3 passed")
    summary = (folder / "summary.md").read_text()
    assert "## Repeated tests (1)" in summary
    assert f"`{TEST}`: **2/3 passed**" in summary
    page = (folder / "index.html").read_text()
    assert '<section id="repeats"><h2>Repeated tests (1)</h2>' in page
    assert '<td class="rate">2/3 passed</td>' in page
    assert f'href="#t-{util.test_slug(failed[0])}"' in page  # the failed repeat's evidence


def test_parametrized_tests_get_the_repeat_id_last_and_the_setting_from_the_environment(
    pytester: pytest.Pytester, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STACK_REPEAT_EACH", "2")
    assert run_session(pytester, folder, "-k", "param").ret == pytest.ExitCode.OK
    assert sorted(results_by_nodeid(folder)) == [
        "test_suite.py::test_param[chromium-repeat-1of2]",
        "test_suite.py::test_param[chromium-repeat-2of2]",
        "test_suite.py::test_param[firefox-repeat-1of2]",
        "test_suite.py::test_param[firefox-repeat-2of2]",
    ]
    groups = group_repeats(load_run(folder).tests)
    assert sorted((g.nodeid, g.rate) for g in groups) == [
        ("test_suite.py::test_param[chromium]", "2/2 passed"),
        ("test_suite.py::test_param[firefox]", "2/2 passed"),
    ]


def test_repeats_with_retries_count_a_repeat_that_passed_on_retry_as_flaky(
    pytester: pytest.Pytester, folder: Path
) -> None:
    result = run_session(pytester, folder, "--repeat-each=3", "--retries=1", "-k", "second")
    assert result.ret == pytest.ExitCode.OK  # the flaky repeat passes the run
    outcomes = [results_by_nodeid(folder)[f"{TEST}[repeat-{k}of3]"]["outcome"] for k in (1, 2, 3)]
    assert outcomes == ["passed", "flaky", "passed"]
    [group] = group_repeats(load_run(folder).tests)
    assert group.rate == "2/3 passed · 1 flaky"
    assert "**2/3 passed · 1 flaky** `.f.`" in (folder / "summary.md").read_text()


def test_without_repeat_each_node_ids_are_unchanged(
    pytester: pytest.Pytester, folder: Path
) -> None:
    run_session(pytester, folder, "-k", "second")
    assert list(results_by_nodeid(folder)) == [TEST]
    assert group_repeats(load_run(folder).tests) == []


@pytest.mark.parametrize("value", ["0", "many"])
def test_a_bad_count_is_a_one_line_usage_error(
    pytester: pytest.Pytester, folder: Path, value: str
) -> None:
    result = run_session(pytester, folder, f"--repeat-each={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--repeat-each: '{value}'*"])
    assert "Traceback" not in result.stderr.str()


def test_repeat_ids_split_back_into_the_tests_own_node_id() -> None:
    assert split_repeat("t.py::test_x[repeat-2of5]") == ("t.py::test_x", 2, 5)
    assert split_repeat("t.py::test_x[a-b-repeat-10of12]") == ("t.py::test_x[a-b]", 10, 12)
    assert split_repeat("t.py::test_x[a]") is None
    assert base_nodeid("t.py::C::test_x[repeat-1of2]") == "t.py::C::test_x"
    assert base_nodeid("t.py::test_x") == "t.py::test_x"


def test_run_takes_the_repeat_and_quarantine_flags() -> None:
    args = build_parser().parse_args(
        ["run", "--repeat-each", "4", "--quarantine", "a.py::t,b.py", "--", "pytest"]
    )
    config = stack_config(args)
    assert (config.repeat_each, config.quarantine) == (4, ("a.py::t", "b.py"))
