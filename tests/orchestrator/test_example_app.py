"""A second app, not ours, through the CLI from outside the repository: proof that a user
adopts the orchestrator with a profile of their own and no orchestrator module edited."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.backend import REPO_ROOT
from tests.fixtures.stack_checks import live_pids_of_run

EXAMPLE = REPO_ROOT / "examples" / "notes_app"


def run_example(tmp_path: Path, provider: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    shutil.copytree(EXAMPLE, tmp_path / "notes_app", ignore=shutil.ignore_patterns("__pycache__"))
    artifacts = tmp_path / "notes-artifacts"
    result = subprocess.run(
        [
            sys.executable, "-m", "orchestrator", "run",
            "--app", "notes_app/notes_profile.py:profile", "--provider", provider,
            "--artifacts", str(artifacts), "--",
            sys.executable, "-m", "pytest", "notes_app/tests", "-q", "-p", "no:cacheprovider",
        ],
        cwd=tmp_path,  # outside the repository: no pyproject of ours applies
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    return result, artifacts


def assert_the_suite_passed_on_its_own_stack(
    result: subprocess.CompletedProcess[str], artifacts: Path, provider: str
) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
    facts = json.loads((artifacts / "stack.json").read_text())
    assert (facts["app"], facts["provider"]) == ("notes", provider)
    assert set(facts["services"]) == {"migrate", "web"}
    # The app's JSON lines carry the test id the plugin sent, and this run's id.
    lines = [json.loads(x) for x in (artifacts / "logs" / "web.log").read_text().splitlines()]
    posted = [r for r in lines if r["message"] == "POST /notes 201"]
    assert posted and posted[0]["test_id"].startswith("test-a-note-is-stored-and-listed-")
    assert {r["run_id"] for r in lines} == {facts["run_id"]}
    assert live_pids_of_run(facts["run_id"]) == []


@pytest.mark.slow
def test_the_example_app_passes_on_the_local_provider_from_outside_the_repo(
    tmp_path: Path,
) -> None:
    result, artifacts = run_example(tmp_path, "local")

    assert_the_suite_passed_on_its_own_stack(result, artifacts, "local")


@pytest.mark.slow
@pytest.mark.docker
def test_the_example_app_passes_on_the_docker_provider(tmp_path: Path) -> None:
    from orchestrator.providers.docker import docker_answers

    ok, why = docker_answers()
    if not ok:
        pytest.skip(why)
    result, artifacts = run_example(tmp_path, "docker")
    if result.returncode == 2 and "base image" in result.stderr:
        pytest.skip(f"no base image for the docker provider here: {result.stderr.strip()}")

    assert_the_suite_passed_on_its_own_stack(result, artifacts, "docker")
