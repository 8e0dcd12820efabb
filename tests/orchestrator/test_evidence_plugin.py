"""The `ci_stack_evidence` pytest plugin, tested with pytester (and one real run).

Inner sessions run against `RecordingBackend` (a tiny HTTP server in this process) as in
test_pytest_plugin.py. Under `orchestrator run` the plugin sees CI_STACK_RUN_ID and writes
into STACK_ARTIFACTS_DIR; with only STACK_BACKEND_URL (a warm stack) it writes its own
folder and finishes it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import util  # not its test_* names: pytest would collect them
from orchestrator.artifacts import FAILED_TEST_FILE, RESULTS_FILE
from orchestrator.artifacts.layout import SESSION_FILE
from orchestrator.contract import RUN_ENV
from orchestrator.pytest_evidence import database_password
from tests.fixtures.orchestrator_cli import local_run_args, run_cli
from tests.fixtures.stack_checks import files_containing
from tests.orchestrator.test_pytest_plugin import RecordingBackend, run_inner

pytest_plugins = ["pytester"]

PASSWORD = "pw-Secret/42+x"  # URL-encoded in the DSN below
DSN = "postgresql://postgres:pw-Secret%2F42%2Bx@127.0.0.1:5432/app"


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingBackend]:
    with RecordingBackend() as server:
        monkeypatch.setenv("STACK_BACKEND_URL", server.url)
        monkeypatch.setenv("STACK_DATABASE_URL", DSN)
        monkeypatch.setenv("STACK_RUN_ID", "run-9")
        for name in ("STACK_ARTIFACTS_DIR", RUN_ENV):
            monkeypatch.delenv(name, raising=False)
        yield server


@pytest.fixture
def run_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """As under `orchestrator run`: the run's folder in STACK_ARTIFACTS_DIR, CI_STACK_RUN_ID."""
    folder = tmp_path / "artifacts"
    monkeypatch.setenv("STACK_ARTIFACTS_DIR", str(folder))
    monkeypatch.setenv(RUN_ENV, "run-9")
    return folder


MIXED = f"""
import pytest

PASSWORD = {PASSWORD!r}

def test_passes(api):
    api.get("/pass")

def test_fails(api):
    api.get("/fail")
    assert 1 == 2, "deliberately red, leaking " + PASSWORD

@pytest.fixture
def broken():
    raise RuntimeError("fixture exploded")

def test_setup_fails(broken):
    pass

def test_skipped():
    pytest.skip("not today")

@pytest.mark.xfail(reason="known")
def test_xfails():
    assert False

@pytest.fixture
def bad_teardown():
    yield
    raise RuntimeError("teardown exploded")

def test_teardown_fails(bad_teardown):
    pass
"""


def _results(folder: Path) -> dict[str, dict[str, object]]:
    lines = [json.loads(line) for line in (folder / RESULTS_FILE).read_text().splitlines()]
    return {line["nodeid"]: line for line in lines}  # a later line wins, as load_run reads it


def test_every_test_gets_a_result_line_and_failures_a_marker(
    pytester: pytest.Pytester, backend: RecordingBackend, run_folder: Path
) -> None:
    pytester.makepyfile(test_mixed=MIXED)

    result = run_inner(pytester)
    result.assert_outcomes(
        passed=2, failed=1, errors=2, skipped=1, xfailed=1
    )  # test_teardown_fails counts as passed and as an error

    results = _results(run_folder)
    outcomes = {nodeid.split("::")[1]: r["outcome"] for nodeid, r in results.items()}
    assert outcomes == {
        "test_passes": "passed",
        "test_fails": "failed",
        "test_setup_fails": "error",
        "test_skipped": "skipped",
        "test_xfails": "xfailed",
        "test_teardown_fails": "error",
    }
    fails = results["test_mixed.py::test_fails"]
    assert fails["location"] == "test_mixed.py:8"
    assert fails["crash"] == "test_mixed.py:10"
    assert fails["phase"] == "call"
    assert fails["test_id"] == backend.test_id_for_path("/fail")[0]
    assert str(fails["message"]).startswith("AssertionError: deliberately red, leaking ***")
    assert 'api.get("/fail")' in str(fails["longrepr"])  # the code frame
    assert isinstance(fails["duration"], float)
    assert results["test_mixed.py::test_skipped"]["message"] == "not today"
    assert results["test_mixed.py::test_setup_fails"]["phase"] == "setup"
    assert results["test_mixed.py::test_teardown_fails"]["phase"] == "teardown"
    markers = {p.parent.name for p in run_folder.glob(f"tests/*/{FAILED_TEST_FILE}")}
    assert markers == {
        util.test_slug(f"test_mixed.py::{name}")
        for name in ("test_fails", "test_setup_fails", "test_teardown_fails")
    }
    # A failed test's record says when it started, when its failure was raised and when it
    # ended (its timeline's own entries); the session's duration is the one pytest printed.
    marker = run_folder / "tests" / util.test_slug("test_mixed.py::test_fails") / FAILED_TEST_FILE
    times = json.loads(marker.read_text())
    assert times["started_at"] <= times["failed_at"] <= times["finished_at"]
    assert "failed_at" not in results["test_mixed.py::test_passes"]
    printed = re.search(r" in (\d+\.\d\d)s", result.stdout.str())
    assert printed is not None, result.stdout.str()
    session = json.loads((run_folder / SESSION_FILE).read_text())
    assert abs(session["seconds"] - float(printed.group(1))) <= 0.011  # pytest rounds
    assert 'tests="6"' in (run_folder / "junit.xml").read_text()
    assert files_containing(run_folder, PASSWORD) == []  # redacted when written
    assert not (run_folder / "index.html").exists()  # `orchestrator run` finishes the folder


def test_results_are_recorded_across_conftest_folders(
    pytester: pytest.Pytester, backend: RecordingBackend, run_folder: Path
) -> None:
    for name in ("a", "b"):  # conftests in sub-folders make pytest call hooks per folder
        pytester.mkpydir(name)
        (pytester.path / name / "conftest.py").write_text("X = 1\n")
        (pytester.path / name / f"test_{name}.py").write_text("def test_it():\n    pass\n")

    run_inner(pytester).assert_outcomes(passed=2)

    assert sorted(_results(run_folder)) == ["a/test_a.py::test_it", "b/test_b.py::test_it"]


SIGKILLED = f"""
import os, signal

def test_leaks_then_fails():
    assert False, "the password is " + {PASSWORD!r}

def test_killed():
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_sigkilled_session_leaves_no_password_in_the_folder(
    pytester: pytest.Pytester, backend: RecordingBackend, run_folder: Path
) -> None:
    pytester.makepyfile(test_killed=SIGKILLED)

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:playwright")

    assert result.ret == -signal.SIGKILL
    nodeid = "test_killed.py::test_leaks_then_fails"
    assert _results(run_folder)[nodeid]["outcome"] == "failed"
    assert (run_folder / "tests" / util.test_slug(nodeid) / FAILED_TEST_FILE).is_file()
    assert not (run_folder / "junit.xml").exists()  # still in its staging dir, outside
    assert files_containing(run_folder, PASSWORD) == []


def test_an_explicit_junitxml_path_wins(
    pytester: pytest.Pytester, backend: RecordingBackend, run_folder: Path, tmp_path: Path
) -> None:
    pytester.makepyfile(test_green="def test_green():\n    pass\n")
    own = tmp_path / "own.xml"

    run_inner(pytester, f"--junitxml={own}").assert_outcomes(passed=1)

    assert own.is_file()
    assert not (run_folder / "junit.xml").exists()
    assert list(_results(run_folder)) == ["test_green.py::test_green"]


def test_without_a_stack_nothing_is_written(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("STACK_BACKEND_URL", "STACK_ARTIFACTS_DIR", RUN_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STACK_RUN_ID", f"evidence-test-{os.getpid()}")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    pytester.makepyfile(test_red="def test_red():\n    assert False\n")

    run_inner(pytester).assert_outcomes(failed=1)

    assert sorted(p.name for p in pytester.path.iterdir()) == ["test_red.py"]
    assert list(tmp_path.glob("ci-stack-*-junit-*")) == []  # the staging dir is gone


def _up_folder(tmp_path: Path, test_id: str) -> Path:
    """What `orchestrator up` leaves: stack.json and logs with records of two runs."""
    folder = tmp_path / "up"
    (folder / "logs").mkdir(parents=True)
    (folder / "stack.json").write_text(
        json.dumps(
            {"run_id": "run-9", "provider": "local", "app": "backend", "timings": {"total": 1.25}}
        )
    )
    records = [
        {"timestamp": "2026-01-01T00:00:01.000Z", "level": "INFO", "logger": "backend.access",
         "message": "GET /fail 200", "correlation_id": "c1", "test_id": test_id,
         "run_id": "run-9", "extra": {"method": "GET", "path": "/fail", "status": 200,
                                      "duration_ms": 3}},
        {"timestamp": "2026-01-01T00:00:00.500Z", "level": "INFO", "logger": "backend.x",
         "message": "from an earlier run", "test_id": test_id, "run_id": "run-8"},
    ]  # fmt: skip
    (folder / "logs" / "backend.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def test_a_warm_stack_session_writes_and_finishes_its_own_folder(
    pytester: pytest.Pytester,
    backend: RecordingBackend,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    nodeid = "test_mixed.py::test_fails"
    up = _up_folder(tmp_path, util.test_id_for(nodeid))
    monkeypatch.setenv("STACK_ARTIFACTS_DIR", str(up))  # as `up` prints it
    pytester.makepyfile(test_mixed=MIXED)
    stale = pytester.path / "artifacts" / "pytest" / "tests" / "stale-test"
    stale.mkdir(parents=True)
    (stale.parent.parent / RESULTS_FILE).write_text("{}\n")
    # an earlier version's session: no marker, but its run.json
    (stale.parent.parent / "run.json").write_text('{"run_id": "old", "verdict": "passed"}')

    run_inner(pytester)

    own = pytester.path / "artifacts" / "pytest"
    assert not stale.exists()  # an earlier session's evidence is replaced, not mixed
    assert len(_results(own)) == 6
    sliced = own / "tests" / util.test_slug(nodeid) / "backend.jsonl"
    assert [json.loads(line)["message"] for line in sliced.read_text().splitlines()] == [
        "GET /fail 200"
    ]
    summary = (own / "summary.md").read_text()
    assert summary.startswith("# e2e run: FAILED · backend on local")
    assert "run `run-9`" in summary
    assert (own / "index.html").is_file()
    assert sorted(p.name for p in up.rglob("*")) == ["backend.jsonl", "logs", "stack.json"]
    assert files_containing(own, PASSWORD) == []


def test_a_stack_started_by_hand_is_named_by_its_url_and_each_session_is_its_own_run(
    pytester: pytest.Pytester,
    backend: RecordingBackend,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    for name in ("STACK_RUN_ID", "STACK_PROVIDER"):  # no `up`: nothing names the stack
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_mixed=MIXED)
    own, history = pytester.path / "artifacts" / "pytest", tmp_path / "history"

    run_ids = []
    for _ in range(2):
        run_inner(pytester, f"--history={history}")
        run_ids.append(json.loads((own / "run.json").read_text())["run_id"])

    assert (
        (own / "summary.md")
        .read_text()
        .startswith(f"# e2e run: FAILED · app on stack at {backend.url}")
    )
    assert "?" not in run_ids and run_ids[0] != run_ids[1]  # the history tells them apart
    recorded = sorted(json.loads(p.read_text())["run_id"] for p in (history / "runs").iterdir())
    assert recorded == sorted(run_ids)


def test_a_warm_stack_session_refuses_a_folder_that_is_not_evidence(
    pytester: pytest.Pytester, backend: RecordingBackend
) -> None:
    mine = pytester.path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    pytester.makepyfile(test_green="def test_green():\n    pass\n")

    result = run_inner(pytester, f"--stack-artifacts={mine}")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "is not empty and holds no .ci-stack-run.json" in result.stderr.str()
    assert "Fix: pass --stack-artifacts a new or empty folder" in result.stderr.str()
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]  # no marker left either
    assert (mine / "notes.txt").read_text() == "keep me"


def test_a_warm_stack_session_never_empties_a_folder_that_merely_holds_evidence_names(
    pytester: pytest.Pytester, backend: RecordingBackend
) -> None:
    mine = pytester.path / "mine"
    (mine / ".git").mkdir(parents=True)
    (mine / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (mine / RESULTS_FILE).write_text("{}\n")
    pytester.makepyfile(test_green="def test_green():\n    pass\n")

    result = run_inner(pytester, f"--stack-artifacts={mine}")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (mine / ".git" / "HEAD").read_text() == "ref: refs/heads/main\n"
    assert sorted(p.name for p in mine.iterdir()) == [".git", RESULTS_FILE]


def test_a_warm_stack_session_reuses_its_own_earlier_folder(
    pytester: pytest.Pytester, backend: RecordingBackend
) -> None:
    pytester.makepyfile(test_green="def test_green():\n    pass\n")
    own = pytester.path / "artifacts" / "pytest"

    for _ in range(2):
        result = run_inner(pytester)
        assert result.ret == 0
    assert len(_results(own)) == 1
    assert (own / ".ci-stack-run.json").is_file()


def test_a_warm_stack_session_never_clears_the_stacks_own_folder(
    pytester: pytest.Pytester,
    backend: RecordingBackend,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    up = _up_folder(tmp_path, "any")
    (up / "tests").mkdir()
    monkeypatch.setenv("STACK_ARTIFACTS_DIR", str(up))
    pytester.makepyfile(test_green="def test_green():\n    pass\n")

    result = run_inner(pytester, f"--stack-artifacts={up}")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "is a stack's run folder" in result.stderr.str()
    assert (up / "logs" / "backend.jsonl").is_file()


def test_the_password_is_read_from_the_dsn() -> None:
    assert database_password(DSN) == PASSWORD
    assert database_password("postgresql://postgres@h/db") is None
    assert database_password(None) is None


FAILING_BASELINE = """
pytest_plugins = ["tests.integration.conftest"]

def test_baseline_fails_on_purpose(sse_client_factory, start_task):
    task_id = start_task(steps=2, step_delay_ms=10, fail_at_step=2)
    client = sse_client_factory(f"/api/tasks/{task_id}/stream")
    client.collect_until_close()
    assert False, "failing on purpose to see its evidence"
"""


@pytest.mark.slow
def test_a_failing_sse_baseline_gets_a_slice_of_its_own_records(tmp_path: Path) -> None:
    test_file = tmp_path / "test_failing_baseline.py"
    test_file.write_text(FAILING_BASELINE)
    folder = tmp_path / "artifacts"
    command = [sys.executable, "-m", "pytest", str(test_file), "-p", "no:cacheprovider"]
    command += ["-p", "no:playwright", f"--rootdir={tmp_path}"]

    result = run_cli(*local_run_args(folder, *command), timeout=120)

    assert result.returncode == 1, result.stderr
    nodeid = "test_failing_baseline.py::test_baseline_fails_on_purpose"
    evidence = folder / "tests" / util.test_slug(nodeid)
    records = [json.loads(line) for line in (evidence / "backend.jsonl").read_text().splitlines()]
    assert records, "the baseline's requests left no record with its test id"
    assert {r["test_id"] for r in records} == {util.test_id_for(nodeid)}
    # The scripted task's failure, logged by the backend as a warning with this test's id.
    assert any(r["level"] == "WARNING" and "stopped" in str(r["message"]) for r in records)
    assert (evidence / "transcript-1.jsonl").is_file()
    assert "failing on purpose" in (folder / "index.html").read_text()
