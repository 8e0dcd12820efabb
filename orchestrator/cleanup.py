"""`clean`: remove what dead runs left behind — processes, containers, networks, temp dirs.

Only what provably belongs to a dead run is removed; the report says what was skipped and
why, and whether Docker could be checked at all.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass, field

from orchestrator.contract import RUN_ENV
from orchestrator.embedded_postgres import clean_leftovers
from orchestrator.proc import ProcessInfo, process_environment, process_exists, wait_gone
from orchestrator.runs import active_run_ids


@dataclass
class CleanReport:
    removed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    docker: str = "not checked"

    def summary(self) -> str:
        return (
            f"{len(self.removed)} leftover(s) removed, {len(self.skipped)} skipped "
            f"(live runs); Docker: {self.docker}"
        )


def _process_run_ids() -> dict[int, str]:
    """pid → run id, for processes started by a run (they carry RUN_ENV)."""
    found: dict[int, str] = {}
    for info in ProcessInfo.all():
        if info.pid == os.getpid():
            continue
        run_id = process_environment(info.pid).get(RUN_ENV)
        if run_id:
            found[info.pid] = run_id
    return found


def clean_processes(report: CleanReport, run_id: str | None = None, grace: float = 5.0) -> None:
    """Stop leftover service and command processes of dead runs (or of `run_id`)."""
    active = active_run_ids()
    targets: dict[int, str] = {}
    for pid, rid in _process_run_ids().items():
        if run_id is not None and rid != run_id:
            continue
        if rid in active and run_id is None:
            report.skipped.append(f"process {pid} (run {rid} is alive)")
            continue
        targets[pid] = rid
    for pid in targets:
        _kill(pid, signal.SIGTERM)
    wait_gone(list(targets), grace)
    for pid in targets:
        if process_exists(pid):
            _kill(pid, signal.SIGKILL)
    report.removed += [f"process {pid} (run {rid})" for pid, rid in sorted(targets.items())]


def clean_containers(report: CleanReport, run_id: str | None = None) -> None:
    """Remove containers and networks labelled by dead runs (or by `run_id`)."""
    from orchestrator.providers.docker import docker_answers

    ok, why = docker_answers()
    if not ok:
        report.docker = f"not checked: {why}"
        return
    from orchestrator.providers.docker_resources import remove_labelled

    active = active_run_ids()
    report.removed += remove_labelled(run_id=run_id, keep=active)
    report.docker = "checked"


def clean_all(run_id: str | None = None, *, images: bool = False) -> CleanReport:
    report = CleanReport()
    clean_processes(report, run_id)
    report.removed += [line.removeprefix("removed ") for line in clean_leftovers(run_id)]
    clean_containers(report, run_id)
    return report


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)
