"""`clean`: remove what dead runs left behind — processes, containers, networks, temp dirs;
with `--images` also this checkout's stale images (never another checkout's).

Only what provably belongs to a dead run is removed; the report says what was skipped and
why, and whether Docker could be checked at all.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.config import OrchestratorConfig
from orchestrator.contract import OWNER_ENV, OWNER_LABEL, RUN_ENV, RUN_LABEL
from orchestrator.embedded_postgres import clean_leftovers
from orchestrator.errors import OrchestratorError
from orchestrator.ownership import keep_reason
from orchestrator.proc import ProcessInfo, process_environment, process_exists, wait_gone
from orchestrator.profile import load_profile


@dataclass
class CleanReport:
    removed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    docker: str = "not checked"
    images: str | None = None  # with --images: what was removed and kept, why

    def summary(self) -> str:
        text = (
            f"{len(self.removed)} leftover(s) removed, {len(self.skipped)} skipped "
            f"(their runs may be alive); Docker: {self.docker}"
        )
        return f"{text}; {self.images}" if self.images else text


def _run_processes() -> dict[int, tuple[str, str | None]]:
    """pid → (run id, owner), for processes started by a run (they carry RUN_ENV)."""
    found: dict[int, tuple[str, str | None]] = {}
    for info in ProcessInfo.all():
        if info.pid == os.getpid() or not info.alive:
            continue
        environment = process_environment(info.pid)
        run_id = environment.get(RUN_ENV)
        if run_id:
            found[info.pid] = (run_id, environment.get(OWNER_ENV))
    return found


def clean_processes(report: CleanReport, run_id: str | None = None, grace: float = 5.0) -> None:
    """Stop the service and command processes of runs whose owner is dead (or of `run_id`)."""
    targets: dict[int, str] = {}
    for pid, (rid, owner) in _run_processes().items():
        if run_id is not None and rid != run_id:
            continue
        reason = keep_reason(rid, owner) if run_id is None else None
        if reason is not None:
            report.skipped.append(f"process {pid}: {reason}")
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

    def keep(labels: dict[str, str]) -> str | None:
        return keep_reason(labels.get(RUN_LABEL, "?"), labels.get(OWNER_LABEL))

    report.removed += remove_labelled(run_id=run_id, keep=keep, skipped=report.skipped)
    report.docker = "checked"


def clean_images(report: CleanReport) -> None:
    """This checkout's untagged build stages and old content-hash tags; the current ones (of
    the configured app profile's images), unlabelled images and other checkouts' stay (see
    `orchestrator.images.stale`). With no loadable profile every tag stays."""
    from orchestrator.images import docker_client, remove_stale_images

    try:
        recipes = tuple(load_profile(OrchestratorConfig.load().app).images())
    except OrchestratorError:
        recipes = ()  # no current tag is known: none is removed
    client = docker_client(timeout=120)
    try:
        pruned = remove_stale_images(client, recipes=recipes)
    finally:
        client.close()
    report.removed += [f"image {name}" for name in pruned.removed]
    report.images = pruned.summary()


def clean_all(
    run_id: str | None = None, *, images: bool = False, pg_tmpdir: Path | None = None
) -> CleanReport:
    """`pg_tmpdir`: the setting's folder, where embedded servers may have left dirs too."""
    report = CleanReport()
    clean_processes(report, run_id)
    removed = clean_leftovers(run_id, pg_tmpdir)
    report.removed += [line.removeprefix("removed ") for line in removed]
    clean_containers(report, run_id)
    if images and report.docker == "checked":
        clean_images(report)
    return report


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)
