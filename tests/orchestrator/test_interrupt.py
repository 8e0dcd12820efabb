"""Ctrl-C is safe everywhere: `python -m orchestrator up|run` and `nox -s up`, on both
providers, stopped by SIGINT to their whole process group as a terminal sends it, leave
nothing with the run's id (processes, containers, networks) and write the run's report.

Each test starts its subject in a session of its own (its own process group), so the signal
reaches exactly what the test started; a failed test cleans up only its own run id.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.contract import RUN_LABEL
from tests.fixtures.backend import REPO_ROOT, wait_until
from tests.fixtures.orchestrator_cli import ORCHESTRATOR, run_cli
from tests.fixtures.stack_checks import live_pids_of_run

REPORT_FILES = ("index.html", "summary.md", "run.json")
# What CMD does under `run`: say its run id, then wait to be interrupted.
WAITING_COMMAND = (
    "import os, pathlib, sys, time; "
    "pathlib.Path(sys.argv[1]).write_text(os.environ['CI_STACK_RUN_ID']); time.sleep(600)"
)
START_TIMEOUT = {"local": 90.0, "docker": 600.0}  # docker may build its images first
STOP_TIMEOUT = 120.0


class GroupProcess:
    """A command leading its own process group; output into files (no pipe to fill)."""

    def __init__(self, argv: list[str], folder: Path, *, cwd: Path, env: dict[str, str]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.out, self.err = folder / "stdout.txt", folder / "stderr.txt"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(
                argv, cwd=cwd, env=env, stdout=out, stderr=err, start_new_session=True
            )

    def output(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    def interrupt_group(self) -> None:
        """What Ctrl-C in a terminal does: SIGINT to every process of the group."""
        os.killpg(self.process.pid, signal.SIGINT)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"still running {timeout:.0f}s after SIGINT:\n{self.output()[-3000:]}"
            ) from None

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def _environment(provider: str) -> dict[str, str]:
    # `python` and `nox` of this interpreter first on PATH (nox's sessions run `python`).
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "PATH": path, "TESTCONTAINERS_RYUK_DISABLED": "true",
            "STACK_PROVIDER": provider}  # fmt: skip


def _docker_leftovers(run_id: str) -> list[str]:
    """Containers (running or not) and networks labelled with `run_id`."""
    from orchestrator.images import docker_client

    client = docker_client(timeout=60)
    try:
        filters = {"label": f"{RUN_LABEL}={run_id}"}
        containers = client.containers.list(all=True, filters=filters)
        networks = client.networks.list(filters=filters)
        return [f"container {c.name}" for c in containers] + [f"network {n.name}" for n in networks]
    finally:
        client.close()


def _require(provider: str) -> None:
    if provider == "docker":
        from orchestrator.providers.docker import docker_answers

        ok, why = docker_answers()
        if not ok:
            pytest.skip(why)


@pytest.fixture
def run_ids() -> Iterator[list[str]]:
    """Run ids a test started: whatever of them survives the test is cleaned, by id."""
    started: list[str] = []
    yield started
    for run_id in started:
        run_cli("clean", "--run-id", run_id, timeout=120)


def _assert_nothing_left(run_id: str, provider: str, subject: GroupProcess) -> None:
    assert live_pids_of_run(run_id) == [], f"processes of {run_id} survived:\n{subject.output()}"
    if provider == "docker":
        assert _docker_leftovers(run_id) == [], subject.output()


def _assert_report(folder: Path, run_id: str) -> None:
    missing = [name for name in REPORT_FILES if not (folder / name).is_file()]
    assert not missing, f"no {', '.join(missing)} in {folder}"
    assert json.loads((folder / "run.json").read_text())["run_id"] == run_id


def _nox_project(tmp_path: Path) -> Path:
    """A folder holding our noxfile and what it reads (its state and artifacts stay there),
    and the demo app with its image (a `backend/` there is what the stack imports)."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("noxfile.py", "pyproject.toml", "constraints.txt"):
        shutil.copyfile(REPO_ROOT / name, project / name)
    for folder in ("backend", "images"):
        shutil.copytree(
            REPO_ROOT / folder, project / folder,
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"),
        )  # fmt: skip
    return project


PROVIDERS = [
    pytest.param("local", marks=pytest.mark.slow),
    pytest.param("docker", marks=[pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]),
]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sigint_to_the_group_of_up_leaves_nothing_and_writes_the_report(
    provider: str, tmp_path: Path, run_ids: list[str]
) -> None:
    _require(provider)
    artifacts, state = tmp_path / "artifacts", tmp_path / "up.json"
    up = GroupProcess(
        [*ORCHESTRATOR, "up", "--provider", provider, "--workers", "1", "--artifacts",
         str(artifacts), "--state", str(state)],
        tmp_path / "out", cwd=REPO_ROOT, env=_environment(provider),
    )  # fmt: skip
    try:
        wait_until(state.is_file, START_TIMEOUT[provider], message="up's state file")
        run_id = json.loads(state.read_text())["run_id"]
        run_ids.append(run_id)
        assert live_pids_of_run(run_id) or provider == "docker"

        up.interrupt_group()
        code = up.wait(STOP_TIMEOUT)
    finally:
        up.kill()

    assert code == 0, up.output()  # Ctrl-C is how `up` ends
    assert "SIGINT: stack stopped" in up.output()
    _assert_nothing_left(run_id, provider, up)
    _assert_report(artifacts, run_id)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sigint_to_the_group_of_run_stops_cmd_and_the_stack(
    provider: str, tmp_path: Path, run_ids: list[str]
) -> None:
    _require(provider)
    artifacts, said = tmp_path / "artifacts", tmp_path / "run-id.txt"
    run = GroupProcess(
        [*ORCHESTRATOR, "run", "--provider", provider, "--workers", "1", "--artifacts",
         str(artifacts), "--", sys.executable, "-c", WAITING_COMMAND, str(said)],
        tmp_path / "out", cwd=REPO_ROOT, env=_environment(provider),
    )  # fmt: skip
    try:
        wait_until(said.is_file, START_TIMEOUT[provider], message="CMD to start")
        wait_until(said.read_text, 5, message="CMD to write its run id")
        run_id = said.read_text()
        run_ids.append(run_id)

        run.interrupt_group()
        code = run.wait(STOP_TIMEOUT)
    finally:
        run.kill()

    assert code == 128 + signal.SIGINT, run.output()
    assert "SIGINT: stack stopped" in run.output()
    _assert_nothing_left(run_id, provider, run)
    _assert_report(artifacts, run_id)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("target", ["group", "nox"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_ctrl_c_on_nox_up_stops_the_stack_and_writes_the_report(
    provider: str, target: str, tmp_path: Path, run_ids: list[str]
) -> None:
    """The real noxfile's `up` session (run in this environment: no venv, no install), in a
    folder of its own (its state file and artifacts stay there), stopped as a terminal does
    (SIGINT to the group) or by SIGINT to nox alone (nox passes it on as SIGTERM)."""
    _require(provider)
    if shutil.which("nox", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("nox is not installed here (pip install --group tests)")
    project = _nox_project(tmp_path)
    artifacts = tmp_path / "artifacts"
    nox = GroupProcess(
        [sys.executable, "-m", "nox", "-s", "up", "--force-venv-backend", "none", "--no-install",
         "--", "--provider", provider, "--workers", "1", "--artifacts", str(artifacts)],
        tmp_path / "out", cwd=project, env=_environment(provider),
    )  # fmt: skip
    state = project / ".ci-stack" / "up.json"
    try:
        wait_until(state.is_file, START_TIMEOUT[provider], message="nox up's state file")
        run_id = json.loads(state.read_text())["run_id"]
        run_ids.append(run_id)

        if target == "group":
            nox.interrupt_group()
        else:
            nox.process.send_signal(signal.SIGINT)
        nox.wait(STOP_TIMEOUT)
    finally:
        nox.kill()

    assert "stack stopped" in nox.output()
    _assert_nothing_left(run_id, provider, nox)
    _assert_report(artifacts, run_id)
    assert not state.exists()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_ctrl_c_on_nox_e2e_stops_the_tests_and_the_stack_and_writes_the_report(
    provider: str, tmp_path: Path, run_ids: list[str]
) -> None:
    """The real noxfile's `e2e` session running a test that waits, stopped as a terminal does
    (SIGINT to the group): the tests end, the stack goes, the report is written."""
    _require(provider)
    if shutil.which("nox", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("nox is not installed here (pip install --group tests)")
    project = _nox_project(tmp_path)
    said = tmp_path / "run-id.txt"
    (project / "test_waits.py").write_text(
        "import os, pathlib, time\n\n"
        "def test_waits():\n"
        f"    pathlib.Path({str(said)!r}).write_text(os.environ['STACK_RUN_ID'])\n"
        "    time.sleep(600)\n"
    )
    artifacts = tmp_path / "artifacts"
    env = {**_environment(provider), "STACK_ARTIFACTS": str(artifacts)}
    nox = GroupProcess(
        [sys.executable, "-m", "nox", "-s", "e2e", "--force-venv-backend", "none", "--no-install",
         "--", "test_waits.py", "-n", "0", "-p", "no:cacheprovider"],
        tmp_path / "out", cwd=project, env=env,
    )  # fmt: skip
    try:
        wait_until(said.is_file, START_TIMEOUT[provider], message="the waiting test")
        run_id = said.read_text()
        run_ids.append(run_id)
        nox.interrupt_group()
        nox.wait(STOP_TIMEOUT)
    finally:
        nox.kill()

    _assert_nothing_left(run_id, provider, nox)
    _assert_report(artifacts, run_id)
