"""The run history end to end: real pytest sessions with the plugins (a warm stack: the
RecordingBackend of test_pytest_plugin.py, the session finishes its own folder) and real
`merge` runs, against one history folder; the setting, the labels in the report, summary.md
and the annotations' order."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchestrator.artifacts.results import Attempt, TestResult
from orchestrator.artifacts.run_history import RunHistory, history_run, is_shard_leg, revision
from orchestrator.config import DEFAULT_HISTORY, ConfigError, OrchestratorConfig
from orchestrator.contract import RUN_ENV
from orchestrator.github import escape_property
from orchestrator.history import HistoryOutcome, HistoryRun, load_history, record_run
from tests.orchestrator.test_merge import merge_main, run_into
from tests.orchestrator.test_pytest_plugin import RecordingBackend, run_inner

pytest_plugins = ["pytester"]

# Each test's outcome in run N comes from OUTCOMES[name][N - 1] (env RUN_NUMBER).
SUITE = """
import os
import pytest

OUTCOMES = {
    "steady": "pp",
    "broke": "pf",
    "always": "ff",
    "wobbly": "pf",
    "skipper": "ss",
}


def outcome(name):
    step = OUTCOMES[name][int(os.environ["RUN_NUMBER"]) - 1]
    if step == "s":
        pytest.skip("not today")
    assert step == "p", f"{name} fails in run {os.environ['RUN_NUMBER']}"


def test_steady():
    outcome("steady")


def test_broke():
    outcome("broke")


def test_always():
    outcome("always")


def test_wobbly():
    outcome("wobbly")


def test_skipper():
    outcome("skipper")
"""
NAMES = ("steady", "broke", "always", "wobbly", "skipper")
EARLIER = datetime(2026, 1, 1, tzinfo=UTC)


def nodeid(name: str) -> str:
    return f"test_suite.py::test_{name}"


@pytest.fixture
def warm(monkeypatch: pytest.MonkeyPatch, pytester: pytest.Pytester) -> Iterator[Path]:
    """A warm stack's environment and the suite; yields the session's evidence folder."""
    with RecordingBackend() as server:
        monkeypatch.setenv("STACK_BACKEND_URL", server.url)
        monkeypatch.setenv("STACK_RUN_ID", "warm-run")
        for name in ("STACK_ARTIFACTS_DIR", RUN_ENV, "STACK_SHARD", "GITHUB_ACTIONS"):
            monkeypatch.delenv(name, raising=False)
        pytester.makepyfile(test_suite=SUITE)
        yield pytester.path / "artifacts" / "pytest"


def seed_wobbly(folder: Path) -> None:
    """Three earlier runs in which test_wobbly passed, failed, passed (it flipped twice)."""
    for n, outcome in enumerate(("passed", "failed", "passed")):
        tests = {nodeid("wobbly"): HistoryOutcome(outcome, 0.1)}
        run = HistoryRun(f"seed-{n}", f"2026-01-01T00:0{n}:00Z", "main", "c0ffee", tests)
        record_run(folder, run, now=EARLIER + timedelta(minutes=n))


def session(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, number: int, *args: str):
    monkeypatch.setenv("RUN_NUMBER", str(number))
    return run_inner(pytester, *args)


def test_a_second_run_shows_the_first_in_every_tests_history_and_labels_its_failures(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, warm: Path, tmp_path: Path
) -> None:
    history = tmp_path / "history"
    seed_wobbly(history)
    monkeypatch.setenv("STACK_HISTORY", str(history))

    session(pytester, monkeypatch, 1).assert_outcomes(passed=3, failed=1, skipped=1)
    [first, *_seeded] = load_history(history)
    assert first.run_id == "warm-run" and len(_seeded) == 3
    assert {n: o.outcome for n, o in first.tests.items()} == {
        nodeid("steady"): "passed",
        nodeid("broke"): "passed",
        nodeid("always"): "failed",
        nodeid("wobbly"): "passed",
        nodeid("skipper"): "skipped",
    }
    first_page = (warm / "index.html").read_text()
    never_seen = '<td class="h"><span class="hint">no earlier run</span></td>'
    assert first_page.count(never_seen) == 4  # all but the seeded wobbly

    session(pytester, monkeypatch, 2).assert_outcomes(passed=1, failed=3, skipped=1)
    assert len(load_history(history)) == 5
    page = (warm / "index.html").read_text()
    # Every test's row shows the first run (its outcome, run id and date on hover).
    rows = re.findall(r'<tr data-status="[^"]+" data-search="([^"]+)">(.*?)</tr>', page)
    assert len(rows) == len(NAMES)
    for search, row in rows:
        name = search.split("::test_", 1)[1].split()[0]
        before = "skipped" if name == "skipper" else "failed" if name == "always" else "passed"
        assert re.search(
            rf'<td class="h"><span class="strip"[^>]*><i class="h-{before}" title="{before} · '
            rf'run warm-run · \d{{4}}-\d\d-\d\d \d\d:\d\d UTC">',
            row,
        ), (name, row)
    # The labels: broke passed before (new), always failed before, wobbly flipped twice.
    labels = dict(re.findall(r'id="t-test-suite-py-test-(\w+)-\w+">.*?class="label l-[\w-]+" '
                             r'title="[^"]+">([\w ]+)</span>', page, re.S))  # fmt: skip
    assert labels == {"broke": "new", "always": "failing before", "wobbly": "known flaky"}
    summary = (warm / "summary.md").read_text()
    assert f"`{nodeid('broke')}` (failed in call) · **new**" in summary
    assert f"`{nodeid('always')}` (failed in call) · **failing before**" in summary
    assert f"`{nodeid('wobbly')}` (failed in call) · **known flaky**" in summary
    assert '<section id="history">' in page and "test_suite.py::test_wobbly" in page


def test_history_off_and_a_shard_leg_record_nothing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, warm: Path, tmp_path: Path
) -> None:
    history = tmp_path / "history"
    monkeypatch.setenv("STACK_HISTORY", "off")
    session(pytester, monkeypatch, 1, f"--history={history}")  # the flag wins over the env
    assert len(load_history(history)) == 1

    session(pytester, monkeypatch, 1)  # STACK_HISTORY=off
    assert len(load_history(history)) == 1
    assert "earlier runs" not in (warm / "index.html").read_text()

    monkeypatch.setenv("STACK_HISTORY", str(history))
    monkeypatch.setenv("STACK_SHARD", "1/1")
    session(pytester, monkeypatch, 2)  # a shard leg: labelled, not recorded
    assert len(load_history(history)) == 1
    assert "· **new**" in (warm / "summary.md").read_text()


def test_a_history_folder_that_cannot_be_written_leaves_the_run_as_it_was(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, warm: Path, tmp_path: Path
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("in the way")
    result = session(pytester, monkeypatch, 1, f"--history={blocked}")
    result.assert_outcomes(passed=3, failed=1, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert f"history  not recorded in {blocked}" in result.stderr.str()
    assert "Traceback" not in result.stderr.str()
    assert (warm / "index.html").is_file() and blocked.read_text() == "in the way"


# -- merge ----------------------------------------------------------------------------------


def test_merge_labels_from_the_history_records_the_merged_run_and_orders_annotations(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("STACK_SHARD", "GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT", RUN_ENV):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_suite=SUITE)
    history = tmp_path / "history"
    seed_wobbly(history)
    for number in (1, 2):
        monkeypatch.setenv("RUN_NUMBER", str(number))
        legs = tmp_path / f"run-{number}"
        with monkeypatch.context() as mp:
            for index in (1, 2):
                run_into(pytester, mp, legs / f"e2e-local-{index}", f"--shard={index}/2")
        out = tmp_path / f"merged-{number}"
        monkeypatch.setenv("GITHUB_RUN_ID", f"77{number}")
        legs_given = [str(leg) for leg in sorted(legs.iterdir())]
        status = merge_main(["--out", str(out), "--history", str(history), *legs_given])
        assert status == 1
    runs = load_history(history)
    assert [r.run_id for r in runs[:2]] == ["merge-772-1", "merge-771-1"]
    assert set(runs[0].tests) == {nodeid(name) for name in NAMES}  # both legs' tests
    summary = (out / "summary.md").read_text()
    assert re.search(r"`test_suite::test_broke` \(failed, shard [\w-]+\) · \*\*new\*\*", summary)
    assert "· **failing before**" in summary and "· **known flaky**" in summary
    page = (out / "index.html").read_text()
    assert "run merge-771-1" in page and '<section id="history">' in page
    # Merged again (the same workflow run): not counted as its own earlier run; the
    # annotations come new first, then failing before, then known flaky.
    again = tmp_path / "merged-again"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    capsys.readouterr()
    merge_main(["--out", str(again), "--annotate", "--history", str(history), *legs_given])
    captured = capsys.readouterr()
    annotations = [line for line in captured.out.splitlines() if line.startswith("::")]
    titles = [line.split("title=", 1)[1].split("::", 1)[0] for line in annotations]
    assert titles == [escape_property(nodeid(n)) for n in ("broke", "always", "wobbly")]
    assert "· **failing before**" in (again / "summary.md").read_text()
    assert len(load_history(history)) == 3 + 3
    assert (
        f"merge  history {history}/: 4 earlier run(s); failures: 1 new, 1 failing before, "
        "1 known flaky"
    ) in captured.err


# -- the setting and the pieces ---------------------------------------------------------------


def test_the_history_setting(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[tool.ci-stack]\n")
    assert OrchestratorConfig.load(env={}, pyproject=pyproject).history_folder == (
        tmp_path / DEFAULT_HISTORY
    )
    for off in ("off", "OFF", "no", "false", "0", "none"):
        assert OrchestratorConfig.load(env={"STACK_HISTORY": off}).history_folder is None
    pyproject.write_text('[tool.ci-stack]\nhistory = "h"\n')
    loaded = OrchestratorConfig.load(env={}, pyproject=pyproject)
    assert loaded.history_folder == Path("h") and loaded.sources is not None
    assert loaded.sources["history"] == "[tool.ci-stack] history"
    pyproject.write_text("[tool.ci-stack]\nhistory = false\n")
    assert OrchestratorConfig.load(env={}, pyproject=pyproject).history_folder is None
    flagged = OrchestratorConfig.load({"history": "off"}, env={"STACK_HISTORY": "x"})
    assert flagged.history_folder is None
    pyproject.write_text('[tool.ci-stack]\nhistory = ""\n')
    with pytest.raises(ConfigError, match="history: it is empty"):
        OrchestratorConfig.load(env={}, pyproject=pyproject)


def test_merge_with_a_bad_history_setting_is_a_one_line_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STACK_HISTORY")  # the pyproject's value counts
    leg = tmp_path / "leg"
    leg.mkdir()
    (tmp_path / "pyproject.toml").write_text('[tool.ci-stack]\nhistory = ""\n')
    result = subprocess.run(
        ["python", "-m", "orchestrator", "merge", "--out", str(tmp_path / "o"), str(leg)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["merge: [tool.ci-stack] history: it is empty"]


def test_a_shard_leg_is_told_by_stack_shard_or_the_shard_option() -> None:
    assert is_shard_leg(None, {"STACK_SHARD": "1/2"})
    assert is_shard_leg(["pytest", "--shard", "1/2"], {})
    assert is_shard_leg(["pytest", "--shard=2/2", "e2e"], {})
    assert not is_shard_leg(["pytest", "e2e"], {"STACK_SHARD": " "})
    assert not is_shard_leg(None, {})


def test_the_revision_is_githubs_else_gits(tmp_path: Path) -> None:
    env = {"GITHUB_REF_NAME": "42/merge", "GITHUB_HEAD_REF": "feature", "GITHUB_SHA": "abc"}
    assert revision(tmp_path, env) == ("feature", "abc")
    assert revision(tmp_path / "nowhere", {}) == (None, None)  # not a checkout
    repo = tmp_path / "repo"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "topic", str(repo)], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert revision(repo / ".ci-stack" / "history", {}) == ("topic", head)


def test_a_history_run_is_the_tests_as_the_history_stores_them() -> None:
    tests = [
        TestResult("t.py::a", "flaky", 1.5, attempts=[Attempt(number=1, outcome="failed")]),
        TestResult("t.py::b", "passed", 0.25),
    ]
    run = history_run(tests, "r", "2026-12-06T04:36:17.123456+00:00", quarantined={"t.py::b"})
    assert run.finished_at == "2026-12-06T04:36:17Z"
    assert run.tests == {
        "t.py::a": HistoryOutcome("flaky", 1.5, 2, False),
        "t.py::b": HistoryOutcome("passed", 0.25, 1, True),
    }
    assert json.loads(json.dumps(run.to_json()))["tests"]["t.py::a"]["attempts"] == 2


def test_the_repeats_of_a_test_are_one_record_and_have_the_tests_history(
    tmp_path: Path,
) -> None:
    repeats = [f"t.py::a[repeat-{k}of3]" for k in (1, 2, 3)]
    tests = [
        TestResult(repeats[0], "passed", 1.0),
        TestResult(repeats[1], "failed", 2.0),
        TestResult(repeats[2], "passed", 3.0),
        *(TestResult(f"t.py::b[x-repeat-{k}of2]", "passed", 1.0) for k in (1, 2)),
    ]
    run = history_run(tests, "r", None, quarantined={"t.py::b[x]"})
    assert run.tests == {
        "t.py::a": HistoryOutcome("flaky", 2.0, 3, False),
        "t.py::b[x]": HistoryOutcome("passed", 1.0, 2, True),
    }

    folder = tmp_path / "history"
    earlier = {"t.py::a": HistoryOutcome("passed")}
    assert record_run(folder, HistoryRun("old", "2026-01-01T00:00:00Z", None, None, earlier))
    history = RunHistory.load(folder, tests)
    assert history.labels == {repeats[1]: "new"}  # the test passed before: a new failure
    assert [outcome.outcome for _, outcome in history.last(repeats[1])] == ["passed"]


# -- a real stack: pytest's own (self-started) stack and `ci-stack run` -----------------------


@pytest.mark.slow
def test_pytests_own_stack_and_ci_stack_run_record_each_finished_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A tiny local stack (test_retries.py's profile): two pytest sessions that start it
    themselves (`--history`), then `ci-stack run` (STACK_HISTORY), then a shard leg."""
    from orchestrator.contract import EXPORTED_ENV, OWNER_ENV
    from tests.orchestrator.test_retries import LOGGING_PROFILE, WEB

    for name in (*EXPORTED_ENV, RUN_ENV, OWNER_ENV, "STACK_ARTIFACTS", "STACK_SHARD", "CI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STACK_WORKERS", "0")
    folder = tmp_path / "run"
    pytester.makefile(
        ".toml",
        pyproject=f'[tool.ci-stack]\napp = "tiny_profile:profile"\nprovider = "local"\n'
        f'artifacts = "{folder}"\n',
    )
    (pytester.path / "tiny_profile.py").write_text(LOGGING_PROFILE)
    (pytester.path / "tiny_web.py").write_text(WEB)
    pytester.makepyfile(test_suite=SUITE.replace("def test_steady():", "def test_steady(api):"))
    history = tmp_path / "history"
    plain = ("-p", "no:cacheprovider", "-p", "no:playwright")

    for number in (1, 2):
        monkeypatch.setenv("RUN_NUMBER", str(number))
        result = pytester.runpytest_subprocess(*plain, f"--history={history}")
        assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    first, second = reversed(load_history(history))
    assert first.run_id != second.run_id and set(second.tests) == set(first.tests)
    page = (folder / "index.html").read_text()
    # Every test's row and each of the 3 failures' cards show the first run.
    assert page.count(f"run {first.run_id} · ") == len(NAMES) + 3
    assert 'class="label l-failing-before"' in page and 'class="label l-new"' in page

    monkeypatch.setenv("STACK_HISTORY", str(history))
    command = [sys.executable, "-m", "pytest", *plain]
    ran = pytester.run(sys.executable, "-m", "orchestrator", "run", "--", *command)
    assert ran.ret == 1, ran.stderr.str()
    assert len(load_history(history)) == 3
    assert "· **failing before**" in (folder / "summary.md").read_text()

    monkeypatch.setenv("STACK_SHARD", "1/1")
    pytester.run(sys.executable, "-m", "orchestrator", "run", "--", *command)
    assert len(load_history(history)) == 3  # a shard leg records nothing
