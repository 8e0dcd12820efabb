"""A registry of runs in progress, so `clean` never touches a live run's resources."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def registry_dir() -> Path:
    folder = Path(tempfile.gettempdir()) / "ci-stack-runs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def register(run_id: str) -> Path:
    path = registry_dir() / f"{run_id}.json"
    path.write_text(json.dumps({"run_id": run_id, "pid": os.getpid()}))
    return path


def unregister(run_id: str) -> None:
    (registry_dir() / f"{run_id}.json").unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def active_run_ids() -> set[str]:
    """Runs whose orchestrator process is still alive (stale entries are dropped)."""
    active = set()
    for path in registry_dir().glob("*.json"):
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if _alive(int(entry.get("pid", 0))):
            active.add(str(entry["run_id"]))
        else:
            path.unlink(missing_ok=True)
    return active
