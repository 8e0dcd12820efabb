"""Which project builds the images (it names them: `checkout_id`), and the wheel cache."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from orchestrator.config import find_pyproject


def default_project_root() -> Path:
    """The project the images are built for: the folder of the nearest pyproject.toml from
    the working directory upwards, else the working directory."""
    pyproject = find_pyproject()
    return pyproject.parent if pyproject is not None else Path.cwd().resolve()


def checkout_id(project_root: Path | None = None) -> str:
    """Names a checkout on the images it builds: 16 hex digits of a hash of its absolute root."""
    root = (project_root or default_project_root()).resolve()
    return hashlib.sha256(str(root).encode("utf-8")).hexdigest()[:16]


def default_cache_dir() -> Path:
    """Where built wheels are kept: $CI_STACK_CACHE_DIR, else ~/.cache/ci-stack."""
    configured = os.environ.get("CI_STACK_CACHE_DIR")
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "ci-stack"
