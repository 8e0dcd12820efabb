"""The `ci-stack` wheel as a user gets it: built from this checkout, installed with its
`docker` extra into a fresh venv outside the repository, then a foreign app's suite
(examples/notes_app, copied into an empty git repository) run through `python -m
orchestrator run -- pytest ...` on the embedded stack and on Docker, with its profile named
by file (`--app notes_profile.py:profile`) and by module in its pyproject.toml."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.stack_checks import live_pids_of_run

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTES_APP = REPO_ROOT / "examples" / "notes_app"
# What the wheel is built from: nothing else of the checkout may matter.
WHEEL_SOURCES = ("pyproject.toml", "README.md", "orchestrator")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


@dataclass(frozen=True)
class Installed:
    wheel: Path
    python: Path  # the fresh venv's interpreter

    @property
    def bin(self) -> Path:
        return self.python.parent


def _run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("timeout", 900)
    return subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel, built from a copy of its sources, and a venv holding `<wheel>[docker]`."""
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"
    for name in WHEEL_SOURCES:
        if (REPO_ROOT / name).is_dir():
            shutil.copytree(
                REPO_ROOT / name, source / name,
                ignore=shutil.ignore_patterns("__pycache__", "pgmq", "*.egg-info"),
            )  # fmt: skip
        else:
            source.mkdir(exist_ok=True)
            shutil.copyfile(REPO_ROOT / name, source / name)
    uv = shutil.which("uv")
    installer = ["--installer", "uv"] if uv else []
    built = _run([sys.executable, "-m", "build", "--wheel", *installer, "--outdir",
                  str(root / "dist"), str(source)])  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (root / "dist").glob("ci_stack-*.whl")

    venv = root / "venv"
    python = venv / "bin" / "python"
    # The notes app's own dependency beyond ours: waitress (its server).
    wanted = [f"{wheel}[docker]", "waitress>=3.0", "-c", str(REPO_ROOT / "constraints.txt")]
    if uv:
        made = _run([uv, "venv", "-q", "-p", sys.executable, str(venv)])
        assert made.returncode == 0, made.stderr
        done = _run([uv, "pip", "install", "-q", "--python", str(python), *wanted])
    else:
        made = _run([sys.executable, "-m", "venv", str(venv)])
        assert made.returncode == 0, made.stderr
        done = _run([str(python), "-m", "pip", "install", "-q", *wanted])
    assert done.returncode == 0, done.stdout + done.stderr
    return Installed(wheel, python)


def test_the_wheel_holds_the_orchestrator_and_its_database_image_only(
    installed: Installed,
) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()

    assert not [n for n in names if n.startswith("backend/")]
    assert {n.split("/")[0] for n in names} == {"orchestrator", "ci_stack-0.1.0.dist-info"}
    assert "orchestrator/images/postgres-pgmq/Dockerfile" in names
    assert "orchestrator/images/postgres-pgmq/pgmq-entrypoint.sh" in names
    metadata = zipfile.ZipFile(installed.wheel).read("ci_stack-0.1.0.dist-info/METADATA")
    requires = [
        line.split(":", 1)[1].strip()
        for line in metadata.decode().splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    assert not [r for r in requires if r.lower().startswith(("flask", "alembic", "reliable"))]
    assert any(r.startswith("pytest") for r in requires)  # `run -- pytest` finds our plugins


def test_the_console_script_and_the_module_start_the_same_cli(installed: Installed) -> None:
    for command in (
        [str(installed.bin / "ci-stack")],
        [str(installed.python), "-m", "orchestrator"],
    ):
        result = _run([*command, "--help"], timeout=60)
        assert result.returncode == 0, result.stderr
        assert "run" in result.stdout and "clean" in result.stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty git repository holding only the notes app."""
    folder = tmp_path / "notes-project"
    shutil.copytree(NOTES_APP, folder, ignore=shutil.ignore_patterns("__pycache__"))
    assert _run(["git", "init", "-q", str(folder)]).returncode == 0
    return folder


def _user_environment(installed: Installed) -> dict[str, str]:
    """The venv on PATH, and nothing of this checkout or of a run it is inside of."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("STACK_", "CI_STACK_RUN", "PYTEST_", "PYTHON"))
        and key not in ("VIRTUAL_ENV",)
    }
    env["PATH"] = f"{installed.bin}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(installed.python.parent.parent)
    return env


NAMINGS = {
    "by-file": (["--app", "notes_profile.py:profile"], None),
    "by-module-in-pyproject": ([], '[tool.ci-stack]\napp = "notes_profile:profile"\n'),
}
PROVIDERS = [
    pytest.param("local", id="embedded"),
    pytest.param("docker", id="docker", marks=pytest.mark.docker),
]


@pytest.fixture
def docker_cleanup(project: Path, provider: str) -> Iterator[None]:
    """Images the run built for this project (its checkout label) go afterwards."""
    yield
    if provider != "docker":
        return
    from orchestrator.images import CHECKOUT_LABEL, checkout_id, docker_client

    client = docker_client(timeout=120)
    try:
        for image in client.images.list(
            filters={"label": f"{CHECKOUT_LABEL}={checkout_id(project)}"}
        ):
            for tag in image.tags or [image.id]:
                try:
                    client.images.remove(tag)
                except Exception:  # in use by another run: Docker refuses, and it stays
                    continue
    finally:
        client.close()


@pytest.mark.parametrize(
    "naming",
    [
        pytest.param("by-file"),
        pytest.param("by-module-in-pyproject"),
    ],
)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_notes_app_passes_from_the_installed_wheel(
    installed: Installed, project: Path, provider: str, naming: str, docker_cleanup: None
) -> None:
    if provider == "docker":
        from orchestrator.providers.docker import docker_answers

        ok, why = docker_answers()
        if not ok:
            pytest.skip(why)
    # A new user's first step: `ci-stack init` sets the repository up (its profile skeleton
    # has no reset yet, so the suite names the notes app's finished profile).
    init = _run(
        [str(installed.bin / "ci-stack"), "init"], cwd=project, env=_user_environment(installed)
    )
    assert init.returncode == 0, init.stdout + init.stderr
    for written in ("ci_stack_profile.py", "noxfile.py", "pyproject.toml", "e2e/test_first.py"):
        assert (project / written).is_file(), written
    assert list((project / ".github" / "workflows").glob("*.yml"))
    app_args, pyproject = NAMINGS[naming]
    if pyproject is not None:
        (project / "pyproject.toml").write_text(pyproject)
    artifacts = project / "artifacts"

    result = _run(
        [
            str(installed.python), "-m", "orchestrator", "run", *app_args,
            "--provider", provider, "--artifacts", str(artifacts), "--",
            "pytest", "tests", "-q", "-p", "no:cacheprovider",
        ],
        cwd=project, env=_user_environment(installed),
    )  # fmt: skip
    if provider == "docker" and result.returncode == 2 and "base image" in result.stderr:
        pytest.skip(f"no base image for the notes image here: {result.stderr.strip()}")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
    facts = json.loads((artifacts / "stack.json").read_text())
    assert (facts["app"], facts["provider"]) == ("notes", provider)
    assert live_pids_of_run(facts["run_id"]) == []
    # The orchestrator ran from the venv, not from this checkout.
    assert str(REPO_ROOT) not in (artifacts / "stack.json").read_text()
