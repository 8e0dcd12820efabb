"""scripts/testing-daemon-ctl.sh: start, status, stop a testing-mode backend in the background."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.fixtures.backend import REPO_ROOT, free_port, wait_until

SCRIPT = REPO_ROOT / "scripts" / "testing-daemon-ctl.sh"


def is_gone(pid: int) -> bool:
    """True once `pid` has exited (an unreaped zombie counts: it is not our child to reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


class Ctl:
    """Runs the script with one environment; kills what its `start` left if a test fails."""

    def __init__(self, env: dict[str, str], pid_file: Path, url: str) -> None:
        self.env = env
        self.pid_file = pid_file
        self.url = url
        self.started: set[int] = set()

    def __call__(self, command: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["bash", str(SCRIPT), command],
            env={**self.env, **extra_env},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if command == "start" and result.returncode == 0 and self.pid_file.exists():
            self.started.add(int(self.pid_file.read_text()))
        return result

    def kill_leftovers(self) -> None:
        for pid in self.started:
            with contextlib.suppress(ProcessLookupError):
                if not is_gone(pid):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def ctl(tmp_path, make_migrated_database):
    port = free_port()
    pid_file = tmp_path / "backend.pid"
    env = {
        **os.environ,
        "DATABASE_URL": make_migrated_database(),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "PID_FILE": str(pid_file),
        "PYTHON": sys.executable,
    }
    runner = Ctl(env, pid_file, f"http://127.0.0.1:{port}")
    yield runner
    runner.kill_leftovers()


def test_start_status_stop_cycle(ctl, tmp_path):
    # A PID file left by a dead process must not block the start.
    dead = subprocess.Popen(["true"])
    dead.wait()
    ctl.pid_file.write_text(f"{dead.pid}\n")

    started = ctl("start")
    assert started.returncode == 0, started.stderr
    log_file = tmp_path / "backend.log"
    assert str(log_file) in started.stdout
    assert "stale PID file" in started.stderr
    pid = int(ctl.pid_file.read_text())
    assert pid != dead.pid

    ready = wait_until(
        lambda: requests.get(f"{ctl.url}/api/health/readyz", timeout=2).status_code == 200,
        timeout=30,
        message=f"readyz of the daemon (log: {log_file})",
    )
    assert ready
    # Testing mode: the testing endpoints exist.
    assert requests.post(f"{ctl.url}/api/testing/reset", timeout=30).status_code == 200

    status = ctl("status")
    assert status.returncode == 0
    assert "running" in status.stdout and str(pid) in status.stdout

    again = ctl("start")
    assert again.returncode == 0
    assert "already running" in again.stdout and str(pid) in again.stdout
    assert int(ctl.pid_file.read_text()) == pid

    stopped = ctl("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped" in stopped.stdout
    assert "SIGKILL" not in stopped.stdout  # a graceful SIGTERM sufficed
    assert is_gone(pid)
    assert not ctl.pid_file.exists()
    assert "Backend stopped" in log_file.read_text(), "SIGTERM runs the graceful shutdown"

    again = ctl("stop")
    assert again.returncode == 0
    assert "not running" in again.stdout

    status = ctl("status")
    assert status.returncode == 3
    assert "not running" in status.stdout


def test_status_removes_a_stale_pid_file(ctl):
    dead = subprocess.Popen(["true"])
    dead.wait()
    ctl.pid_file.write_text(f"{dead.pid}\n")
    status = ctl("status")
    assert status.returncode == 3
    assert "not running" in status.stdout
    assert "stale PID file" in status.stderr
    assert not ctl.pid_file.exists()


def test_pid_file_naming_another_program_is_not_stopped(ctl):
    other = subprocess.Popen(["sleep", "30"])
    try:
        ctl.pid_file.write_text(str(other.pid))
        result = ctl("stop")
        assert result.returncode == 0
        assert "not running" in result.stdout
        assert other.poll() is None, "stop must not signal a process that is not the backend"
        assert not ctl.pid_file.exists()
    finally:
        other.kill()
        other.wait()


def test_stop_escalates_to_sigkill_after_the_timeout(ctl):
    # Stands in for a hung backend: its command line matches, and it ignores SIGTERM.
    hung = subprocess.Popen(
        ["bash", "-c", 'trap "" TERM; exec -a "python -m backend serve" sleep 30'],
    )
    try:
        wait_until(
            lambda: b"backend serve" in Path(f"/proc/{hung.pid}/cmdline").read_bytes(),
            timeout=5,
            message="the stand-in to exec",
        )
        ctl.pid_file.write_text(str(hung.pid))
        result = ctl("stop", STOP_TIMEOUT="1")
        assert result.returncode == 0, result.stderr
        assert "SIGKILL" in result.stdout
        assert hung.wait(timeout=5) == -signal.SIGKILL
        assert not ctl.pid_file.exists()
    finally:
        if hung.poll() is None:
            hung.kill()
            hung.wait()


def test_start_without_database_url_fails_clearly(ctl):
    env = {k: v for k, v in ctl.env.items() if k != "DATABASE_URL"}
    result = subprocess.run(
        ["bash", str(SCRIPT), "start"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr
    assert not ctl.pid_file.exists()


def test_unknown_command_prints_usage(ctl):
    result = ctl("restart")
    assert result.returncode == 2
    assert "usage:" in result.stderr and "start|stop|status" in result.stderr
