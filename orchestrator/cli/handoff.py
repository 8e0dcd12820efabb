"""What CMD is told about the profile the CLI resolved, so that it loads the same one.

The CLI found the profile `module:attr` on its own `sys.path` (with `python -m orchestrator`
the current folder is on it; a pytest started as CMD may not have it). CMD gets STACK_APP with
a file reference made absolute, and the folder the profile's module was imported from first
on PYTHONPATH, unless CMD's interpreter finds it anyway (an installed location).
"""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path

from orchestrator.contract import ENV_APP
from orchestrator.profile import canonical_reference

__all__ = ["profile_environment"]


def profile_environment(reference: str | None, env: Mapping[str, str]) -> dict[str, str]:
    """STACK_APP (and PYTHONPATH when needed) for CMD; `env` is what CMD would get else.
    Nothing when no profile was named (one handed over as an object)."""
    if reference is None:
        return {}
    told = canonical_reference(reference)
    if told != reference:  # a file, by its absolute path
        return {ENV_APP: told}
    module_ref = reference.rpartition(":")[0]
    found = _import_root(module_ref)
    if found is None or _on_every_path(found):
        return {ENV_APP: reference}
    entries = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]
    if str(found) in entries:
        return {ENV_APP: reference}
    return {ENV_APP: reference, "PYTHONPATH": os.pathsep.join([str(found), *entries])}


def _import_root(module_ref: str) -> Path | None:
    """The `sys.path` folder `module_ref` (already imported) was found in."""
    module = sys.modules.get(module_ref)
    origin = getattr(module, "__file__", None)
    if not origin:
        return None
    path = Path(origin).resolve()
    if path.name == "__init__.py":
        path = path.parent
    depth = module_ref.count(".") + 1
    return path.parents[depth - 1]


def _on_every_path(folder: Path) -> bool:
    """True when a Python started as CMD finds `folder` without being told: an installed
    location, or a `sys.path` entry other than the first (the script's or current folder)."""
    paths = sysconfig.get_paths()
    keys = ("stdlib", "platstdlib", "purelib", "platlib")
    known = {Path(paths[key]).resolve() for key in keys}
    known.update(Path(entry).resolve() for entry in sys.path[1:] if entry)
    return folder in known
