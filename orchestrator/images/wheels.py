"""The backend's wheels, built on the host into a cache keyed by what they are made from.

Containers here can't reach PyPI over HTTPS, so the image installs these wheels offline.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from orchestrator.errors import PrerequisiteMissing
from orchestrator.images.hashing import FIXED_MTIME, cache_key, content_digest
from orchestrator.images.paths import default_cache_dir, default_repo_root
from orchestrator.images.results import SUBPROCESS_TIMEOUT_S, TAIL_LINES, ImageBuildFailed

log = logging.getLogger(__name__)

_IMAGE_PYTHON = (3, 11)  # what both backend bases run: wheels must be built for it
_PROJECT_META_FILES = ("pyproject.toml", "setup.py", "setup.cfg", "MANIFEST.in")


@dataclass(frozen=True)
class WheelSet:
    """The backend's wheels: third-party dependencies and the project's own wheel."""

    deps: tuple[Path, ...]
    project: Path
    deps_cached: bool
    project_cached: bool


def project_source_files(repo_root: Path) -> dict[str, Path]:
    """The files the project's wheel is built from: packaging metadata and package trees."""
    pyproject = _read_pyproject(repo_root)
    files: dict[str, Path] = {}
    readme = pyproject.get("project", {}).get("readme")
    meta_names = [*_PROJECT_META_FILES, *([readme] if isinstance(readme, str) else [])]
    for meta_name in meta_names:
        if (repo_root / meta_name).is_file():
            files[meta_name] = repo_root / meta_name
    for package in _top_level_packages(pyproject):
        for path in sorted((repo_root / package).rglob("*")):
            relative = path.relative_to(repo_root)
            if any(
                part == "__pycache__" or part.endswith(".egg-info") or part.startswith(".")
                for part in relative.parts
            ):
                continue
            if path.is_file() and path.suffix not in (".pyc", ".pyo"):
                files[relative.as_posix()] = path
    return files


def prepare_wheels(*, repo_root: Path | None = None, cache_dir: Path | None = None) -> WheelSet:
    """Build (or reuse) the backend's wheels on the host.

    Third-party wheels are keyed by the project's dependency list and the versions installed
    in this environment (used as constraints, so the image runs what the tests were run
    with); the project's wheel by the content of its source files. Either is rebuilt only
    when its key changes.
    """
    if sys.version_info[:2] != _IMAGE_PYTHON:
        wanted = ".".join(map(str, _IMAGE_PYTHON))
        raise PrerequisiteMissing(
            f"the backend image runs Python {wanted} but this is Python "
            f"{sys.version_info.major}.{sys.version_info.minor}: its compiled wheels won't fit",
            f"run the orchestrator from a Python {wanted} virtualenv",
        )
    root = repo_root or default_repo_root()
    wheel_dir = (cache_dir or default_cache_dir()) / "wheels"
    try:
        wheel_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # e.g. a service user whose home is /nonexistent
        raise PrerequisiteMissing(
            f"cannot create the wheel cache {wheel_dir} ({exc.strerror})",
            "set CI_STACK_CACHE_DIR (or XDG_CACHE_HOME, or HOME) to a folder you can write",
        ) from exc
    python_tag = f"cp{_IMAGE_PYTHON[0]}{_IMAGE_PYTHON[1]}"

    project = _read_pyproject(root).get("project", {})
    requirements = [str(requirement) for requirement in project.get("dependencies", [])]
    project_name = str(project.get("name", ""))
    constraints = _installed_pins(exclude=_canonical_name(project_name))
    deps_key = cache_key(
        {
            "python": python_tag,
            "platform": sysconfig.get_platform(),
            "requirements": requirements,
            "constraints": constraints,
        }
    )

    def make_deps(out: Path, scratch: Path) -> None:
        constraints_file = scratch / "constraints.txt"
        constraints_file.write_text("\n".join(constraints) + "\n", encoding="utf-8")
        _run_pip(
            [
                "wheel",
                *("--wheel-dir", str(out)),
                *("--constraint", str(constraints_file)),
                *requirements,
            ],
            what="the backend's dependencies",
        )

    deps_dir, deps_cached = _cached_dir(wheel_dir / f"deps-{deps_key}", make_deps)

    sources = project_source_files(root)
    project_key = cache_key(
        {"python": python_tag, "sources": {n: content_digest(p) for n, p in sources.items()}}
    )

    def make_project(out: Path, scratch: Path) -> None:
        source_root = scratch / "src"
        for relative, path in sources.items():
            (source_root / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, source_root / relative)
        _run_pip(
            ["wheel", "--no-deps", "--wheel-dir", str(out), str(source_root)],
            what="the project's own wheel",
            env={"SOURCE_DATE_EPOCH": str(FIXED_MTIME)},
        )

    project_dir, project_cached = _cached_dir(wheel_dir / f"project-{project_key}", make_project)
    _prune(wheel_dir, "deps-", keep=2)
    _prune(wheel_dir, "project-", keep=3)

    project_wheels = sorted(project_dir.glob("*.whl"))
    if len(project_wheels) != 1:
        raise ImageBuildFailed(
            "backend",
            f"expected one project wheel in {project_dir}, found {len(project_wheels)}",
            [],
            hint=f"delete {project_dir} and build again",
        )
    return WheelSet(
        deps=tuple(sorted(deps_dir.glob("*.whl"))),
        project=project_wheels[0],
        deps_cached=deps_cached,
        project_cached=project_cached,
    )


def _read_pyproject(repo_root: Path) -> dict[str, Any]:
    with (repo_root / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)


def _top_level_packages(pyproject: Mapping[str, Any]) -> list[str]:
    find = pyproject.get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {})
    names = {str(pattern).split(".")[0].rstrip("*") for pattern in find.get("include", [])}
    if not names:
        raise PrerequisiteMissing(
            "pyproject.toml lists no packages under [tool.setuptools.packages.find] include",
            'list them, e.g. include = ["backend*", "orchestrator*"]',
        )
    return sorted(name for name in names if name)


def _canonical_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed_pins(*, exclude: str) -> list[str]:
    pins: dict[str, str] = {}
    for dist in metadata.distributions():
        raw_name = dist.metadata["Name"]
        if not raw_name:
            continue
        name = _canonical_name(raw_name)
        if name != exclude and name not in pins:
            pins[name] = f"{name}=={dist.version}"
    return sorted(pins.values())


def _cached_dir(final: Path, make: Callable[[Path, Path], None]) -> tuple[Path, bool]:
    """`final` if it exists, else made by `make(out, scratch)` and renamed into place."""
    if final.is_dir():
        os.utime(final)  # most recently used: kept by _prune
        return final, True
    scratch = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        out = scratch / "out"
        out.mkdir()
        make(out, scratch)
        try:
            out.rename(final)
        except OSError:
            if not final.is_dir():  # else another process made it first: theirs is as good
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return final, False


def _prune(directory: Path, prefix: str, *, keep: int) -> None:
    entries = sorted(
        (path for path in directory.glob(f"{prefix}*") if path.is_dir()),
        key=lambda path: path.stat().st_mtime,
        reverse=True,
    )
    stale_scratch = [
        path
        for path in directory.glob(f".{prefix}*")
        if time.time() - path.stat().st_mtime > 3600  # left by a killed run
    ]
    for path in entries[keep:] + stale_scratch:
        log.debug("removing old wheel cache %s", path)
        shutil.rmtree(path, ignore_errors=True)


def _run_pip(args: list[str], *, what: str, env: Mapping[str, str] | None = None) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    log.info("building wheels: %s", what)
    log.debug("running %s", " ".join(command))
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            timeout=SUBPROCESS_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ImageBuildFailed(
            "backend", f"pip took over {SUBPROCESS_TIMEOUT_S}s for {what}", []
        ) from exc
    for line in result.stdout.splitlines():
        log.debug("pip: %s", line)
    if result.returncode != 0:
        lines = (result.stdout + result.stderr).splitlines()
        raise ImageBuildFailed(
            "backend",
            f"pip could not build the wheels of {what} (exit {result.returncode})",
            lines[-TAIL_LINES:],
            hint="the wheels are built on this host with its pip configuration; check that "
            "`pip download <package>` works here",
        )
