"""`images used ARTIFACTS`: the images a finished Docker run used, for the CI images cache
(which then holds the current images only, not every one the restored cache brought back)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.init.templates import render_workflow
from tests.fixtures.backend import REPO_ROOT
from tests.fixtures.docker_images import import_marker_image
from tests.fixtures.orchestrator_cli import run_cli

DOCKER_RUN = {
    "provider": "docker",
    "database": {
        "image": "ci-stack/postgres-pgmq-schema:d8932bc6fb3afd7c",
        "schema_image": "ci-stack/postgres-pgmq-schema:d8932bc6fb3afd7c",
    },
    "prepare": {
        "images": {
            "postgres-pgmq": {
                "tag": "ci-stack/postgres-pgmq:8abd0fa45175011a",
                "base_image": "ci-stack/debian-base:bookworm",
            },
            "backend": {
                "tag": "ci-stack/backend:22da2c31834b30fb",
                "base_image": "ci-stack/debian-base:bookworm",
            },
        },
        "schema": {"image": "ci-stack/postgres-pgmq-schema:d8932bc6fb3afd7c"},
    },
}


def test_a_docker_run_names_its_images_their_base_and_the_schema_image_once(
    tmp_path: Path,
) -> None:
    (tmp_path / "stack.json").write_text(json.dumps(DOCKER_RUN))

    result = run_cli("images", "used", str(tmp_path))

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "ci-stack/postgres-pgmq:8abd0fa45175011a",
        "ci-stack/debian-base:bookworm",
        "ci-stack/backend:22da2c31834b30fb",
        "ci-stack/postgres-pgmq-schema:d8932bc6fb3afd7c",
    ]


@pytest.mark.parametrize(
    "content",
    [None, "{not json", json.dumps({"provider": "local", "prepare": {}}), "[]"],
    ids=["missing", "corrupt", "local-run", "not-an-object"],
)
def test_a_folder_without_images_is_one_line_and_exit_2(
    tmp_path: Path, content: str | None
) -> None:
    if content is not None:
        (tmp_path / "stack.json").write_text(content)

    result = run_cli("images", "used", str(tmp_path))

    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("ci-stack images used: ") and "Fix: " in line


@pytest.mark.docker
@pytest.mark.parametrize("workflow", ["ours", "init"])
def test_the_ci_images_cache_holds_only_the_images_the_run_used(
    tmp_path: Path, docker_api: Any, run_label: str, workflow: str
) -> None:
    # The workflow's own step, run as the runner runs it: a superseded image of ours that a
    # restored cache brought back (labelled like the used one) is not written again.
    key, _, value = run_label.partition("=")
    label = {"ci-stack.image": "app", key: value}
    suffix = run_label.rpartition("-")[2]
    used, superseded = f"ci-stack-test/app:{suffix}-new", f"ci-stack-test/app:{suffix}-old"
    import_marker_image(docker_api, used, label)
    import_marker_image(docker_api, superseded, label)
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    (artifacts / "junit.xml").write_text("<testsuites/>")
    (artifacts / "stack.json").write_text(
        json.dumps({"provider": "docker", "prepare": {"images": {"app": {"tag": used}}}})
    )
    output = tmp_path / "github-output"
    env = {
        **os.environ,
        "HOME": str(tmp_path / "home"),
        "STACK_ARTIFACTS": str(artifacts),
        "GITHUB_OUTPUT": str(output),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }

    script = _workflow_step(workflow, "Write the images for the next run")
    for _ in range(2):
        step = subprocess.run(
            ["bash", "-e", "-c", script],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert step.returncode == 0, step.stdout + step.stderr
        saved = tmp_path / "home" / ".cache" / "ci-stack-images" / "images.tar"
        written = saved.stat().st_mtime_ns
        with tarfile.open(saved) as tar:
            manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert [tag for entry in manifest for tag in entry["RepoTags"]] == [used]
    if workflow == "ours":  # the second time nothing changed: the tar is not written again
        assert saved.stat().st_mtime_ns == written
    assert output.read_text().count("saved=true") == 2


def _workflow_step(workflow: str, name: str) -> str:
    """A step's script of our CI's workflow, or of the one `ci-stack init` writes."""
    if workflow == "ours":
        text = (REPO_ROOT / ".github" / "workflows" / "ci.yml").read_text()
    else:
        text = render_workflow(2, "docker", "3.11")
    jobs = yaml.safe_load(text)["jobs"]
    steps = [step for job in jobs.values() for step in job["steps"]]
    return str(next(step["run"] for step in steps if step.get("name") == name))
