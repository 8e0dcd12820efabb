"""`clean`: remove what earlier runs left behind — processes, containers, networks, temp dirs."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from orchestrator.embedded_postgres import clean_leftovers
from orchestrator.runs import active_run_ids

RUN_ENV = "CI_STACK_RUN_ID"


def _process_run_ids() -> dict[int, str]:
    """pid → run id, for processes started by a local provider (they carry RUN_ENV)."""
    found: dict[int, str] = {}
    needle = f"{RUN_ENV}=".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        for item in environ.split(b"\0"):
            if item.startswith(needle):
                found[int(entry.name)] = item[len(needle) :].decode(errors="replace")
                break
    return found


def clean_processes(run_id: str | None = None, grace: float = 5.0) -> list[str]:
    """Stop leftover backend/worker processes of dead runs (or of `run_id`)."""
    active = active_run_ids()
    targets = {
        pid: rid
        for pid, rid in _process_run_ids().items()
        if (rid == run_id if run_id else rid not in active)
    }
    for pid in targets:
        _kill(pid, signal.SIGTERM)
    deadline = time.perf_counter() + grace
    while time.perf_counter() < deadline and any(_exists(pid) for pid in targets):
        time.sleep(0.05)
    for pid in targets:
        if _exists(pid):
            _kill(pid, signal.SIGKILL)
    return [f"process {pid} (run {rid})" for pid, rid in sorted(targets.items())]


def clean_containers(run_id: str | None = None) -> list[str]:
    """Remove containers and networks labelled by dead runs (or by `run_id`)."""
    from orchestrator.provider_choice import docker_answers

    ok, _why = docker_answers()
    if not ok:
        return []
    from orchestrator.providers.docker_resources import remove_labelled

    return remove_labelled(run_id=run_id, keep=active_run_ids())


def clean_all(run_id: str | None = None) -> list[str]:
    removed = clean_processes(run_id)
    removed += [line.removeprefix("removed ") for line in clean_leftovers(run_id)]
    removed += clean_containers(run_id)
    return removed


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still "exists" but is gone for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)
