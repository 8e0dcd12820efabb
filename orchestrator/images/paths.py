"""Where the project checkout (with `images/`) and the wheel cache are."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from orchestrator.errors import PrerequisiteMissing


def default_repo_root() -> Path:
    """The checkout this module belongs to (it holds `images/`)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "images").is_dir():
        raise PrerequisiteMissing(
            f"no images/ folder next to the orchestrator package ({root})",
            "run from a checkout of the project (pip install -e .), or pass repo_root",
        )
    return root


def checkout_id(repo_root: Path | None = None) -> str:
    """Names a checkout on the images it builds: 16 hex digits of a hash of its absolute root."""
    root = (repo_root or default_repo_root()).resolve()
    return hashlib.sha256(str(root).encode("utf-8")).hexdigest()[:16]


def default_cache_dir() -> Path:
    """Where built wheels are kept: $CI_STACK_CACHE_DIR, else ~/.cache/ci-stack."""
    configured = os.environ.get("CI_STACK_CACHE_DIR")
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "ci-stack"
