"""`python -m orchestrator` as users run it: a subprocess, its exit code, stdout and stderr."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.fixtures.backend import REPO_ROOT, wait_until
from tests.fixtures.orchestrator_cli import CliProcess, run_cli
from tests.fixtures.stack_checks import accepts_connections, live_pids_of_run

# -- bad options and missing prerequisites -------------------------------------------------


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    return lines[0]


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["run", "--workers", "-1", "--", "true"], "--workers: '-1' must be 0 or more"),
        (["up", "--workers", "two"], "--workers: 'two' is not a whole number"),
        (["run", "--provider", "nope", "--", "true"], "unknown provider 'nope': use auto, docker"),
        (
            ["run", "--timeout", "0", "--", "true"],
            "--timeout: '0' must be a finite number of seconds above 0",
        ),
        (["run"], "run needs a command"),
        (["run", "--"], "run needs a command"),
        (["launch"], "invalid choice: 'launch'"),
    ],
)
def test_bad_options_exit_2_with_one_clear_line(args: list[str], mentions: str) -> None:
    result = run_cli(*args)

    assert result.returncode == 2
    line = one_line(result.stderr)
    assert mentions in line
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_docker_without_a_daemon_is_a_missing_prerequisite(tmp_path: Path) -> None:
    result = run_cli(
        "run",
        "--provider",
        "docker",
        "--artifacts",
        str(tmp_path / "artifacts"),
        "--",
        "true",
        env={"DOCKER_HOST": "unix:///nonexistent.sock"},
    )

    assert result.returncode == 2
    line = one_line(result.stderr)
    assert line.startswith("ci-stack: --provider docker cannot run here: no Docker daemon")
    assert "--provider local" in line  # says how to get going
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "artifacts").exists()  # it failed before anything started


@pytest.mark.slow
def test_a_missing_pg_bindir_is_a_missing_prerequisite(tmp_path: Path) -> None:
    result = run_cli(
        "run",
        "--provider",
        "local",
        "--pg-bindir",
        "/nonexistent",
        "--artifacts",
        str(tmp_path),
        "--",
        "true",
    )

    assert result.returncode == 2
    [line] = [x for x in result.stderr.splitlines() if x.startswith("ci-stack:")]
    assert "PostgreSQL binaries not found" in line
    assert "/nonexistent" in line
    assert "Fix:" in line
    assert "Traceback" not in result.stderr
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("# e2e run: FAILED")
    assert "PostgreSQL binaries not found" in summary


# -- run and up ----------------------------------------------------------------------------


@pytest.mark.slow
def test_run_exits_with_the_commands_status_and_records_a_failed_run(tmp_path: Path) -> None:
    result = run_cli(
        "run", "--provider", "local", "--workers", "1", "--artifacts", str(tmp_path), "--",
        "sh", "-c", "exit 7",
    )  # fmt: skip

    assert result.returncode == 7, result.stderr
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("# e2e run: FAILED")
    assert "- command exit status: 7" in summary
    facts = json.loads((tmp_path / "stack.json").read_text())
    assert facts["provider"] == "local"
    assert f"run `{facts['run_id']}`" in summary
    assert live_pids_of_run(facts["run_id"]) == []


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_up_prints_the_stack_as_json_and_stops_cleanly_on_a_signal(
    tmp_path: Path, signum: signal.Signals
) -> None:
    state = tmp_path / "state" / "up.json"
    cli = CliProcess(
        "up", "--provider", "local", "--workers", "1", "--json", "--artifacts",
        str(tmp_path / "artifacts"), "--state", str(state),
    )  # fmt: skip
    try:
        environment = json.loads(cli.next_stdout_line(timeout=60))
        wait_until(state.exists, 10, message="up's state file")
        assert json.loads(state.read_text())["environment"] == environment
        assert oct(state.stat().st_mode & 0o777) == "0o600"  # it holds the database URL
        run_id = environment["STACK_RUN_ID"]
        assert set(environment) >= {
            "STACK_BACKEND_URL",
            "STACK_DATABASE_URL",
            "STACK_RUN_ID",
            "STACK_ARTIFACTS_DIR",
            "STACK_PROVIDER",
        }
        assert accepts_connections(environment["STACK_BACKEND_URL"])
        assert live_pids_of_run(run_id), "no process of the run is up"

        cli.process.send_signal(signum)
        code = cli.wait(timeout=30)
    finally:
        cli.kill()

    # Ctrl-C is how `up` is meant to end: exit 0; a SIGTERM from elsewhere says so.
    assert code == (0 if signum == signal.SIGINT else 128 + signum)
    assert f"{signum.name}: stack stopped" in cli.stderr
    assert "Traceback" not in cli.stderr
    assert cli.stdout.empty(), "up printed more than one line on stdout"
    assert live_pids_of_run(run_id) == []
    assert not accepts_connections(environment["STACK_BACKEND_URL"])
    assert not state.exists()


# -- compose -------------------------------------------------------------------------------


def test_compose_prints_the_compose_file() -> None:
    result = run_cli("compose")

    assert result.returncode == 0
    assert result.stdout == (REPO_ROOT / "compose.yaml").read_text()


def test_signals_during_teardown_do_not_cut_it_short():
    from orchestrator.cli import Interrupted, SignalGuard

    guard = SignalGuard()
    with pytest.raises(Interrupted):
        guard(signal.SIGINT, None)
    guard(signal.SIGTERM, None)  # a second signal while stopping: noted, not raised
    held = SignalGuard()
    held.hold()
    held(signal.SIGINT, None)  # after CMD finished, teardown is not interrupted either
