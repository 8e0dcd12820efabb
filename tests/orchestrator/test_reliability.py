"""A run that is interrupted, killed, or loses its backend leaves nothing behind.

Each test starts `python -m orchestrator run --provider local -- CMD` where CMD writes a
ready file (its pid and the stack's environment) and then keeps the run busy.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import SETTINGS_BY_NAME
from orchestrator.embedded_postgres import find_leftovers
from orchestrator.proc import process_exists
from tests.fixtures.backend import wait_until
from tests.fixtures.orchestrator_cli import CliProcess, local_run_args, run_cli
from tests.fixtures.stack_checks import accepts_connections, live_pids_of_run

pytestmark = pytest.mark.slow

# Writes the ready file atomically, then idles (a stand-in for a long test suite).
BUSY_COMMAND = """
import json, os, signal, sys, time
signal.signal(signal.SIGINT, lambda *_: sys.exit(130))  # a quiet Ctrl-C, like a test runner
ready = sys.argv[1]
info = {"pid": os.getpid(), **{k: v for k, v in os.environ.items() if k.startswith("STACK_")}}
with open(ready + ".tmp", "w") as handle:
    json.dump(info, handle)
os.replace(ready + ".tmp", ready)
time.sleep(120)
"""

# Writes the ready file, then polls readyz until the backend stops answering: exit 1.
WATCH_BACKEND_COMMAND = """
import json, os, sys, time
import requests
ready = sys.argv[1]
with open(ready + ".tmp", "w") as handle:
    json.dump({"pid": os.getpid(), "STACK_RUN_ID": os.environ["STACK_RUN_ID"]}, handle)
os.replace(ready + ".tmp", ready)
url = os.environ["STACK_BACKEND_URL"] + "/api/health/readyz"
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        requests.get(url, timeout=2).raise_for_status()
    except requests.RequestException as exc:
        print(f"backend gone: {exc}", flush=True)
        sys.exit(1)
    time.sleep(0.1)
sys.exit(0)
"""


def start_run(folder: Path, command: str) -> tuple[CliProcess, dict[str, Any]]:
    """Start a run of `command`; return it and what CMD wrote once the stack was up."""
    ready = folder / "ready.json"
    cli = CliProcess(
        *local_run_args(folder / "artifacts", sys.executable, "-c", command, str(ready))
    )
    try:
        wait_until(ready.exists, timeout=60, message="the command's ready file")
    except AssertionError:
        cli.kill()
        raise AssertionError(f"the run did not get ready; stderr:\n{cli.stderr}") from None
    return cli, json.loads(ready.read_text())


def pid_alive(pid: int) -> bool:
    return process_exists(pid)


def assert_nothing_left(run_id: str, info: dict[str, Any]) -> None:
    assert live_pids_of_run(run_id) == []
    assert not pid_alive(info["pid"]), "the command outlived its run"
    assert find_leftovers(run_id) == []
    if "STACK_BACKEND_URL" in info:
        assert not accepts_connections(info["STACK_BACKEND_URL"])
        assert not accepts_connections(info["STACK_DATABASE_URL"])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_command_and_the_stack(tmp_path: Path, signum: signal.Signals) -> None:
    cli, info = start_run(tmp_path, BUSY_COMMAND)
    run_id = info["STACK_RUN_ID"]
    try:
        assert len(live_pids_of_run(run_id)) >= 3  # backend, worker, the command
        assert find_leftovers(run_id), "the embedded PostgreSQL dir should exist while running"

        cli.process.send_signal(signum)
        started = time.monotonic()
        code = cli.wait(timeout=30)
        seconds = time.monotonic() - started
    finally:
        cli.kill()

    assert code == 128 + signum
    assert seconds < 20, f"stopping took {seconds:.1f}s"
    assert f"{signum.name}: stack stopped" in cli.stderr
    assert "Traceback" not in cli.stderr
    assert_nothing_left(run_id, info)
    summary = (tmp_path / "artifacts" / "summary.md").read_text()
    assert summary.startswith("# e2e run: FAILED")


@pytest.fixture
def private_pg_base(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A base dir for the run's PostgreSQL that only this test looks in.

    Other pytest sessions on this machine sweep dead runs' dirs from the shared temp roots
    (tests/fixtures/database.py); a killed run's dir must stay until this test cleans it.
    Short, because the unix socket path inside it is limited to 107 bytes.
    """
    shm = Path("/dev/shm")
    base = Path(tempfile.mkdtemp(prefix="cs-", dir=shm if shm.is_dir() else None))
    base.chmod(0o755)  # the server may run as the postgres user
    monkeypatch.setenv(SETTINGS_BY_NAME["pg_tmpdir"].env, str(base))  # for the CLI
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_clean_removes_what_a_killed_orchestrator_left(
    tmp_path: Path, private_pg_base: Path
) -> None:
    cli, info = start_run(tmp_path, BUSY_COMMAND)
    run_id = info["STACK_RUN_ID"]
    # DOCKER_HOST: this run had no containers; keep `clean` to the local leftovers.
    clean = ("clean", "--run-id", run_id)
    no_docker = {"DOCKER_HOST": "unix:///nonexistent.sock"}
    try:
        cli.kill()
        leftover_pids = live_pids_of_run(run_id)
        leftover_dirs = find_leftovers(run_id, private_pg_base)
        assert info["pid"] in leftover_pids, "the command should have outlived its orchestrator"
        assert [d.parent for d in leftover_dirs] == [private_pg_base]

        result = run_cli(*clean, env=no_docker)
    except BaseException:
        run_cli(*clean, env=no_docker)  # leave nothing behind for the next test
        raise

    assert result.returncode == 0, result.stderr
    removed = result.stdout.splitlines()
    for pid in leftover_pids:
        assert f"removed process {pid} (run {run_id})" in removed
    for folder in leftover_dirs:
        assert any(line.startswith(f"removed {folder}") for line in removed), removed
    assert f"clean: {len(removed)} leftover(s) removed" in result.stderr
    assert_nothing_left(run_id, info)


def test_clean_after_a_clean_exit_finds_nothing(tmp_path: Path) -> None:
    result = run_cli(
        "clean", "--run-id", "no-such-run", env={"DOCKER_HOST": "unix:///nonexistent.sock"}
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "clean: 0 leftover(s) removed" in result.stderr


def test_a_backend_killed_mid_run_fails_the_run_and_the_artifacts_are_complete(
    tmp_path: Path,
) -> None:
    cli, info = start_run(tmp_path, WATCH_BACKEND_COMMAND)
    run_id = info["STACK_RUN_ID"]
    folder = tmp_path / "artifacts"
    try:
        backend_pid = json.loads((folder / "stack.json").read_text())["services"]["backend"]["pid"]
        assert backend_pid in live_pids_of_run(run_id)
        os.kill(backend_pid, signal.SIGKILL)
        code = cli.wait(timeout=60)
    finally:
        cli.kill()

    assert code == 5, cli.stderr  # the stack failed: a service exited during the run
    assert "ci-stack: backend exited with -9 at " in cli.stderr
    assert '"logger": "backend.server"' in cli.stderr  # its log tail is printed
    summary = (folder / "summary.md").read_text()
    assert summary.startswith("# e2e run: FAILED")
    assert "backend exited with -9" in summary
    assert (folder / "logs" / "backend.log").is_file()
    assert (folder / "logs" / "worker-1.log").is_file()
    assert "teardown" in json.loads((folder / "stack.json").read_text())["timings"]
    assert_nothing_left(run_id, info)


def test_clean_never_stops_a_live_run_started_with_another_tmpdir(
    tmp_path: Path, private_pg_base: Path
) -> None:
    other_tmp = tmp_path / "other-tmp"
    other_tmp.mkdir()
    ready = tmp_path / "ready.json"
    args = local_run_args(tmp_path / "artifacts", sys.executable, "-c", BUSY_COMMAND, str(ready))
    cli = CliProcess(*args, TMPDIR=str(other_tmp))
    no_docker = {"DOCKER_HOST": "unix:///nonexistent.sock"}
    try:
        wait_until(ready.exists, timeout=60, message="the command's ready file")
        info = json.loads(ready.read_text())
        run_id = info["STACK_RUN_ID"]
        before = live_pids_of_run(run_id)

        result = run_cli("clean", env=no_docker)  # our TMPDIR, not the run's

        assert result.returncode == 0, result.stderr
        assert live_pids_of_run(run_id) == before, "clean stopped a live run"
        assert accepts_connections(info["STACK_BACKEND_URL"])
        assert f"run {run_id} is alive (pid {cli.process.pid} on " in result.stderr
        assert "Docker: not checked: no Docker daemon answered" in result.stderr
        assert not [line for line in result.stdout.splitlines() if run_id in line]

        cli.kill()  # now its owner is dead: the same clean removes all of it
        swept = run_cli("clean", env=no_docker)
    finally:
        cli.kill()

    assert swept.returncode == 0, swept.stderr
    for pid in before:
        assert f"removed process {pid} (run {run_id})" in swept.stdout, swept.stdout + swept.stderr
    assert_nothing_left(run_id, info)


def test_a_killed_postmaster_is_named_and_fails_the_run(tmp_path: Path) -> None:
    cli, info = start_run(tmp_path, BUSY_COMMAND)
    run_id = info["STACK_RUN_ID"]
    folder = tmp_path / "artifacts"
    try:
        postmaster = json.loads((folder / "stack.json").read_text())["database"]["pid"]
        os.kill(postmaster, signal.SIGKILL)
        code = cli.wait(timeout=60)
    finally:
        cli.kill()

    assert code == 5, cli.stderr
    assert "ci-stack: db exited with -9 at " in cli.stderr
    assert "backend exited" not in cli.stderr.split("ci-stack: db exited")[0]
    summary = (folder / "summary.md").read_text()
    assert "db exited with -9" in summary
    assert_nothing_left(run_id, info)
