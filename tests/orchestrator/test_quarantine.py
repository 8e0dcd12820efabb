"""Quarantine: real inner pytest sessions (pytester, in a subprocess so xdist and the plugins
load as in real use) against a "warm stack" (STACK_BACKEND_URL set; the tests never call it),
so that the session finishes its own folder: run.json's verdict, summary.md, index.html."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from orchestrator import util
from orchestrator.artifacts.junit import QUARANTINE_PROPERTY, read_cases, read_junit
from orchestrator.artifacts.results import load_run
from orchestrator.config import ConfigError, OrchestratorConfig
from orchestrator.contract import RUN_ENV
from orchestrator.github import github_annotations
from orchestrator.quarantine import (
    READY_RUNS,
    Quarantine,
    load_quarantine,
    passing_streak,
    ready_to_leave,
)
from tests.fixtures.plugin_session import results_by_nodeid, run_session, warm_session

pytest_plugins = ["pytester"]

SUITE = """
import os
from pathlib import Path


def calls(name):
    counter = Path(os.environ["COUNTERS"]) / name
    n = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(n))
    return n


def test_known_bad():
    assert False, "known to be broken"


def test_fine():
    pass


def test_flaky():
    n = calls("flaky")
    assert n >= 2, f"call {n} fails"
"""
BAD = "test_suite.py::test_known_bad"


@pytest.fixture
def folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pytester: pytest.Pytester) -> Path:
    return warm_session(monkeypatch, tmp_path, pytester, SUITE)


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_quarantined_failing_test_leaves_the_run_green_and_listed(
    pytester: pytest.Pytester, folder: Path, xdist: list[str]
) -> None:
    result = run_session(pytester, folder, f"--quarantine={BAD}", "-k", "not flaky", *xdist)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*1 quarantined test(s) failed; they do not fail the run*"])
    assert json.loads((folder / "run.json").read_text())["verdict"] == "passed"
    # results.jsonl: its own outcome, marked; its evidence kept
    entry = results_by_nodeid(folder)[BAD]
    assert entry["outcome"] == "failed" and entry["quarantined"] is True
    assert "known to be broken" in entry["message"]
    assert "quarantined" not in results_by_nodeid(folder)["test_suite.py::test_fine"]
    assert (folder / "tests" / util.test_slug(BAD) / "test.json").is_file()
    # junit.xml: a skipped test for its readers, its failure text and own outcome kept
    root = ET.parse(folder / "junit.xml").getroot()
    [case] = [c for c in root.iter("testcase") if c.get("name") == "test_known_bad"]
    skipped = case.find("skipped")
    assert skipped is not None and case.find("failure") is None
    assert skipped.get("type") == QUARANTINE_PROPERTY
    assert "known to be broken" in (skipped.get("message") or "")
    assert "known to be broken" in (skipped.text or "")
    totals = read_junit(folder / "junit.xml")
    assert totals is not None and (totals.failures, totals.skipped, totals.tests) == (0, 1, 2)
    [read] = [c for c in totals.cases if c.name == "test_known_bad"]
    assert (read.outcome, read.quarantined) == ("failed", True)
    assert read.message.startswith("AssertionError: known to be broken")
    # summary.md and index.html list it apart, not among the failures
    summary = (folder / "summary.md").read_text()
    assert summary.startswith("# e2e run: PASSED")
    assert "## Failures" not in summary and "quarantined 1" in summary
    assert "## Quarantined (1)" in summary and f"`{BAD}`: failed" in summary
    page = (folder / "index.html").read_text()
    assert 'id="failures"' not in page and 'id="quarantined"' in page
    assert 'data-status="quarantined">quarantined 1</button>' in page
    assert "data-quarantined=1" in page
    # annotations: a warning, not an error
    for source in (folder, load_run(folder)):
        [line] = github_annotations(source)
        assert line.startswith("::warning ") and "(failed%2C quarantined)" in line


def test_an_unquarantined_failure_still_fails_the_run(
    pytester: pytest.Pytester, folder: Path
) -> None:
    result = run_session(
        pytester, folder, "--quarantine=test_suite.py::test_fine", "-k", "not flaky"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert json.loads((folder / "run.json").read_text())["verdict"] == "failed"
    assert "## Failures (1)" in (folder / "summary.md").read_text()


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_maxfail_does_not_count_a_quarantined_failure(
    pytester: pytest.Pytester, folder: Path, xdist: list[str]
) -> None:
    result = run_session(pytester, folder, f"--quarantine={BAD}", "-x", "-k", "not flaky", *xdist)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert "stopping after" not in result.stdout.str()
    assert set(results_by_nodeid(folder)) == {BAD, "test_suite.py::test_fine"}  # it went on


def test_a_quarantined_flaky_test_never_fails_the_run_even_with_fail_on_flaky(
    pytester: pytest.Pytester, folder: Path
) -> None:
    args = ("--retries=1", "--fail-on-flaky", "-k", "not known_bad")
    result = run_session(pytester, folder, "--quarantine=test_suite.py::test_flaky", *args)
    assert result.ret == pytest.ExitCode.OK
    entry = results_by_nodeid(folder)["test_suite.py::test_flaky"]
    assert (entry["outcome"], entry["quarantined"]) == ("flaky", True)
    assert "## Flaky" not in (folder / "summary.md").read_text()


def test_patterns_from_a_file_named_in_pyproject_and_a_warning_for_one_that_matches_nothing(
    pytester: pytest.Pytester, folder: Path
) -> None:
    pytester.makefile(
        ".txt",
        quarantine="# tests we know are broken\ntest_suite.py::*known*  # issue 12\n\n"
        "test_suite.py::test_gone\n",
    )
    pytester.makepyprojecttoml('[tool.ci-stack]\nquarantine = "quarantine.txt"\n')
    result = run_session(pytester, folder, "-k", "not flaky")
    assert result.ret == pytest.ExitCode.OK
    assert results_by_nodeid(folder)[BAD]["quarantined"] is True
    result.stdout.fnmatch_lines(
        ["ci-stack: warning: quarantine pattern 'test_suite.py::test_gone' matches no test*"]
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_a_misspelt_quarantine_file_is_said_to_be_missing(
    pytester: pytest.Pytester, folder: Path
) -> None:
    pytester.makefile(".txt", quarantine="test_suite.py::*known*\n")
    pytester.makepyprojecttoml('[tool.ci-stack]\nquarantine = "quarantin.txt"\n')
    result = run_session(pytester, folder, "-k", "not flaky")
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # nothing was quarantined
    result.stdout.fnmatch_lines(
        ["ci-stack: warning: quarantine pattern 'quarantin.txt' matches no test of this "
         "session, and there is no file 'quarantin.txt'*"]
    )  # fmt: skip


def test_patterns_from_the_environment(
    pytester: pytest.Pytester, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STACK_QUARANTINE", f"test_suite.py::test_flaky, {BAD}")
    assert run_session(pytester, folder).ret == pytest.ExitCode.OK
    assert {n for n, e in results_by_nodeid(folder).items() if e.get("quarantined")} == {
        BAD,
        "test_suite.py::test_flaky",
    }


def test_an_unreadable_quarantine_file_is_a_one_line_usage_error(
    pytester: pytest.Pytester, folder: Path
) -> None:
    (pytester.path / "quarantine.lst").write_bytes(b"\xff\xfe broken")
    result = run_session(pytester, folder, "--quarantine=quarantine.lst")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*quarantine file *quarantine.lst: cannot be read*Fix:*"])
    assert "Traceback" not in result.stderr.str()


# -- the setting and the patterns ---------------------------------------------------------


def test_the_setting_takes_a_list_a_line_per_entry_or_commas(tmp_path: Path) -> None:
    none = tmp_path / "none.toml"
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.ci-stack]\nquarantine = ["a.py::t", "b.py::*x*"]\n')
    assert OrchestratorConfig.load(env={}, pyproject=pyproject).quarantine == (
        "a.py::t",
        "b.py::*x*",
    )
    env = {"STACK_QUARANTINE": "a.py::t[1,2]\nb.py\n"}  # line breaks: commas are the pattern's
    assert OrchestratorConfig.load(env=env, pyproject=none).quarantine == ("a.py::t[1,2]", "b.py")
    flags = {"quarantine": " a.py::t , b.py "}
    assert OrchestratorConfig.load(flags, env={}, pyproject=none).quarantine == ("a.py::t", "b.py")
    pyproject.write_text("[tool.ci-stack]\nquarantine = 5\n")
    with pytest.raises(ConfigError, match="quarantine: 5 must be a string or a list of strings"):
        OrchestratorConfig.load(env={}, pyproject=pyproject)
    assert OrchestratorConfig.load(env={}, pyproject=none).repeat_each == 1
    with pytest.raises(ConfigError, match="STACK_REPEAT_EACH: '0' must be 1 or more"):
        OrchestratorConfig.load(env={"STACK_REPEAT_EACH": "0"}, pyproject=none)


def test_patterns_match_node_ids_prefixes_parametrizations_globs_and_repeats(
    tmp_path: Path,
) -> None:
    quarantine = Quarantine(("e2e/test_sse.py::*reconnect*", "tests/test_x.py::test_y", "mod.py"))
    assert quarantine.matches("e2e/test_sse.py::test_reconnects_after_drop")
    assert quarantine.matches("tests/test_x.py::test_y")
    assert quarantine.matches("tests/test_x.py::test_y[chromium]")
    assert quarantine.matches("tests/test_x.py::test_y[repeat-2of5]")
    assert quarantine.matches("mod.py::TestA::test_b")
    assert not quarantine.matches("tests/test_x.py::test_y_other")
    assert not quarantine.matches("e2e/test_sse.py::test_stream")
    assert not quarantine.matches("mod.pyc::t")
    assert quarantine.unmatched(["tests/test_x.py::test_y[a-repeat-1of2]"]) == [
        "e2e/test_sse.py::*reconnect*",
        "mod.py",
    ]
    listing = tmp_path / "quarantine.txt"
    listing.write_text("# known\nmod.py::t  # flaky since May\n\n")
    loaded = load_quarantine(["quarantine.txt", "x.py::t", "missing.txt"], tmp_path)
    assert loaded.patterns == ("mod.py::t", "x.py::t", "missing.txt")


# -- ready to leave quarantine ------------------------------------------------------------


class _Outcome:
    def __init__(self, outcome: str) -> None:
        self.outcome = outcome


class _Run:
    def __init__(self, run_id: str, **tests: str) -> None:
        self.run_id = run_id
        self.tests = {f"t.py::{name}": _Outcome(o) for name, o in tests.items()}


def test_ready_to_leave_after_passing_this_run_and_the_last_n() -> None:
    runs = [
        _Run(f"r{i}", a="passed", b="passed" if i != 3 else "failed", c="passed") for i in range(12)
    ]
    runs.insert(0, _Run("now", a="passed"))  # this run, already in the history: not counted
    now = {"t.py::a": "passed", "t.py::b": "passed", "t.py::c": "failed", "t.py::d": "passed"}
    assert ready_to_leave(now, runs, "now", limit=10) == ["t.py::a"]
    assert passing_streak("t.py::b", "passed", runs, "now", 10) == 3
    assert passing_streak("t.py::d", "passed", runs, "now", 10) == 0  # no history yet
    assert ready_to_leave({"t.py::a": "passed"}, runs[:5], "now", limit=10) == []


def test_a_quarantined_test_that_passed_its_last_runs_is_ready_to_leave(
    pytester: pytest.Pytester, folder: Path, tmp_path: Path
) -> None:
    from orchestrator.history import HistoryOutcome, HistoryRun, load_history, record_run

    history = tmp_path / "history"
    fine, flaky = "test_suite.py::test_fine", "test_suite.py::test_flaky"
    for n in range(READY_RUNS):  # a passing record for the fine test, one failure for flaky
        tests = {fine: HistoryOutcome("passed"), flaky: HistoryOutcome("failed" if n else "passed")}
        run_at = f"2026-01-01T00:00:{n:02d}Z"
        assert record_run(history, HistoryRun(f"old-{n}", run_at, "main", None, tests))
    quarantine = f"--quarantine={fine},{flaky},{BAD}"
    result = run_session(pytester, folder, quarantine, f"--history={history}", "--retries=0")
    assert result.ret == pytest.ExitCode.OK  # two quarantined failures: still green
    summary = (folder / "summary.md").read_text()
    ready = [line for line in summary.splitlines() if "ready to leave quarantine" in line]
    assert len(ready) == 1 and ready[0].startswith(f"- `{fine}`: passed")
    page = (folder / "index.html").read_text()
    assert page.count('<div class="ready"') == 1
    newest = load_history(history)[0]  # this run, recorded with its quarantined tests
    assert {n for n, t in newest.tests.items() if t.quarantined} == {fine, flaky, BAD}


# -- merge -----------------------------------------------------------------------------


def _shard(pytester: pytest.Pytester, mp: pytest.MonkeyPatch, out: Path, *args: str) -> None:
    mp.delenv("STACK_BACKEND_URL", raising=False)
    mp.setenv("STACK_ARTIFACTS_DIR", str(out))
    mp.setenv(RUN_ENV, "run-" + out.name)
    out.mkdir(parents=True)
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:playwright", *args)
    (out / "stack.json").write_text(json.dumps({"provider": "local", "run_id": out.name}))


def test_merge_leaves_quarantined_failures_out_of_the_verdict_and_lists_them(
    pytester: pytest.Pytester,
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.orchestrator.test_merge import merge_main

    base = tmp_path / "runs"
    with monkeypatch.context() as mp:
        for index in (1, 2):
            shard = base / f"e2e-{index}"
            _shard(
                pytester, mp, shard, f"--shard={index}/2", f"--quarantine={BAD}", "-k", "not flaky"
            )
    out = tmp_path / "merged"
    status = merge_main(["--out", str(out), str(base / "e2e-1"), str(base / "e2e-2")])
    assert status == 0
    err = capsys.readouterr().err
    assert "merge  quarantined (not counted): test_suite::test_known_bad failed" in err
    cases = read_cases(out / "junit.xml")
    assert [(c.name, c.outcome) for c in cases if c.quarantined] == [("test_known_bad", "failed")]
    summary = (out / "summary.md").read_text()
    assert "Quarantined (1)" in summary and "## Failures" not in summary
    facts = json.loads((out / "merge.json").read_text())
    assert facts["verdict"] == "passed"
    assert facts["quarantined"][0]["outcome"] == "failed"
    page = (out / "index.html").read_text()
    assert 'id="quarantined"' in page
    [line] = github_annotations(out)
    assert line.startswith("::warning ")


def test_the_merged_summary_says_which_quarantined_test_is_ready_to_leave(
    pytester: pytest.Pytester, folder: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from orchestrator.history import HistoryOutcome, HistoryRun, record_run
    from tests.orchestrator.test_merge import merge_main

    history = tmp_path / "history"
    fine = "test_suite.py::test_fine"
    for n in range(READY_RUNS):
        tests = {fine: HistoryOutcome("passed"), BAD: HistoryOutcome("failed")}
        assert record_run(history, HistoryRun(f"old-{n}", f"2026-01-01T00:00:{n:02d}Z", None,
                                              None, tests))  # fmt: skip
    base = tmp_path / "runs"
    with monkeypatch.context() as mp:
        for index in (1, 2):
            _shard(pytester, mp, base / f"e2e-{index}", f"--shard={index}/2",
                   f"--quarantine={BAD},{fine}", "-k", "not flaky")  # fmt: skip
    out = tmp_path / "merged"
    shards = [str(base / "e2e-1"), str(base / "e2e-2")]
    assert merge_main(["--out", str(out), "--history", str(history), *shards]) == 0

    summary = (out / "summary.md").read_text()
    ready = [line for line in summary.splitlines() if "ready to leave quarantine" in line]
    assert len(ready) == 1 and "test_fine" in ready[0]


def test_merge_with_a_flaky_shard_is_red_with_fail_on_flaky(
    pytester: pytest.Pytester,
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.orchestrator.test_merge import merge_main

    base = tmp_path / "runs"
    with monkeypatch.context() as mp:
        for index in (1, 2):
            _shard(pytester, mp, base / f"e2e-{index}", f"--shard={index}/2", "--retries=1",
                   "-k", "not known_bad")  # fmt: skip
    shards = [str(base / "e2e-1"), str(base / "e2e-2")]
    monkeypatch.chdir(tmp_path)  # no pyproject with settings here
    assert merge_main(["--out", str(tmp_path / "green"), *shards]) == 0
    assert merge_main(["--out", str(tmp_path / "red"), "--fail-on-flaky", *shards]) == 1
    assert "1 test(s) were flaky and fail-on-flaky is set" in capsys.readouterr().err
    facts = json.loads((tmp_path / "red" / "merge.json").read_text())
    assert facts["verdict"] == "failed" and facts["fail_on_flaky"] is True
    monkeypatch.setenv("STACK_FAIL_ON_FLAKY", "1")  # the setting, as the run reads it
    assert merge_main(["--out", str(tmp_path / "red-env"), *shards]) == 1


STACK_SUITE = """
def test_broken(api):
    assert api.get("/broken").status_code == 200
    assert False, "known to be broken"


def test_fine(api):
    assert api.get("/fine").status_code == 200
"""


@pytest.mark.slow
def test_ci_stack_run_passes_quarantine_and_repeat_each_to_pytest_and_stays_green(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`ci-stack run --quarantine ... --repeat-each 2 -- pytest` on a real (tiny, local)
    stack: the exit status and run.json's verdict are green, the repeats' backend slices
    are cut under their own test ids."""
    import subprocess
    import sys

    from orchestrator.contract import EXPORTED_ENV, OWNER_ENV
    from tests.orchestrator.test_retries import LOGGING_PROFILE, WEB

    for name in (*EXPORTED_ENV, RUN_ENV, OWNER_ENV, "STACK_ARTIFACTS", "STACK_WORKERS", "CI"):
        monkeypatch.delenv(name, raising=False)
    for name in ("STACK_QUARANTINE", "STACK_REPEAT_EACH", "STACK_RETRIES", "STACK_HISTORY"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "run"
    pytester.makefile(
        ".toml",
        pyproject='[tool.ci-stack]\napp = "tiny_profile:profile"\nprovider = "local"\n'
        f'artifacts = "{folder}"\nhistory = "off"\n',
    )
    (pytester.path / "tiny_profile.py").write_text(LOGGING_PROFILE)
    (pytester.path / "tiny_web.py").write_text(WEB)
    pytester.makepyfile(test_stack=STACK_SUITE)
    pytest_command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:playwright",
    ]
    quarantine = ["--quarantine", "test_stack.py::test_broken", "--repeat-each", "2"]
    command = [sys.executable, "-m", "orchestrator", "run", *quarantine, "--", *pytest_command]
    done = subprocess.run(
        command, cwd=pytester.path, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((folder / "run.json").read_text())["verdict"] == "passed"
    found = results_by_nodeid(folder)
    assert sorted(found) == [
        f"test_stack.py::test_{name}[repeat-{k}of2]" for name in ("broken", "fine") for k in (1, 2)
    ]
    broken = [entry for nodeid, entry in found.items() if "broken" in nodeid]
    assert all(e["outcome"] == "failed" and e["quarantined"] for e in broken)
    for entry in broken:  # each repeat's own slice: only its own request, its own test id
        slice_file = folder / "tests" / util.test_slug(entry["nodeid"]) / "web.jsonl"
        records = [json.loads(line) for line in slice_file.read_text().splitlines()]
        assert [(r["message"], r["test_id"]) for r in records] == [
            ("GET /broken", entry["test_id"])
        ]
    assert "## Quarantined (2)" in (folder / "summary.md").read_text()
