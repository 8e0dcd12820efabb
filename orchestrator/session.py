"""A run: one stack with everything around it, started and finished in one place.

`open_stack(config)` resolves the app profile and the provider, takes the artifacts folder
(one run owns it: an earlier run's content is cleared; a live run's folder, or one that is
not an earlier run's, is refused before anything starts), prepares the spec (images
resolved, `orchestrator.prepare`), starts the Stack with a LogHarvester stamping this run's
id, and on the way out stops it. The run is finished once, by `Run.finish(...)`: stack.json,
log slices of failed tests, summary.md, index.html, the GitHub job summary, and its tests
appended to the run history (the `history` setting; not by a shard leg). The CLI (`run`,
`up`), the pytest plugin and library users all get the same folder.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.artifacts import Artifacts, RunInfo, Verdict, finish_run
from orchestrator.artifacts.layout import LOSSES_ENV, REPORT_FILE, STACK_FILE, WriteLosses
from orchestrator.artifacts.run_history import is_shard_leg
from orchestrator.config import SETTINGS_BY_NAME, OrchestratorConfig
from orchestrator.contract import (
    ENV_APP,
    ENV_ARTIFACTS_DIR,
    ENV_BACKEND_URL,
    ENV_DATABASE_URL,
    ENV_LOGS_DIR,
    ENV_PROVIDER,
    ENV_RUN_ID,
)
from orchestrator.errors import OrchestratorError
from orchestrator.folder_lock import FolderLock
from orchestrator.github import (
    mask_secrets,
    print_annotations,
    running_on_github,
    write_job_summary,
)
from orchestrator.log_harvest import LogHarvester
from orchestrator.prepare import Prepared, images_obtainable, resolve_images
from orchestrator.profile import AppProfile, canonical_reference, load_profile
from orchestrator.providers.registry import Choice, choose_provider
from orchestrator.redaction import Redactor
from orchestrator.spec import StackSpec
from orchestrator.stack import ServiceExit, Stack, stderr_progress


@dataclass
class Run:
    """One run in progress: its stack and folder. `open_stack` records a start or teardown
    error; the outcome of the command run against it is given to `finish(...)`."""

    config: OrchestratorConfig
    app: AppProfile
    spec: StackSpec  # as prepared: images resolved for a provider that runs them
    choice: Choice
    artifacts: Artifacts
    harvester: LogHarvester
    stack: Stack
    prepared: dict[str, Any] = field(default_factory=dict)  # what the prepare step found
    # The artifacts folder's lock: held until the run is finished (nobody takes the folder
    # while its report is still being written).
    folder_lock: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, repr=False)
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    error: str | None = None
    command: list[str] | None = None  # the rest is set by finish()
    command_status: int | None = None
    exited: list[ServiceExit] = field(default_factory=list)
    finished: bool = False

    @property
    def run_id(self) -> str:
        return self.spec.run_id

    @property
    def app_reference(self) -> str | None:
        """The profile as a child process must name it (STACK_APP): the same one (None: the
        profile was handed over as an object, not named)."""
        if self.config.app is None:
            return None
        return canonical_reference(self.config.app, self.config.root)

    @property
    def backend_url(self) -> str:
        if self.app.web_service is None:
            raise OrchestratorError(f"app profile {self.app.name!r} names no web_service")
        return self.stack.url(self.app.web_service)

    def environment(self) -> dict[str, str]:
        """What a command run against the stack gets in its environment."""
        env = {
            ENV_DATABASE_URL: self.stack.database_url,
            ENV_RUN_ID: self.run_id,
            ENV_ARTIFACTS_DIR: str(self.artifacts.root.resolve()),
            ENV_LOGS_DIR: str(self.artifacts.logs_dir.resolve()),
            ENV_PROVIDER: self.choice.name,
        }
        if self.app_reference is not None:
            env[ENV_APP] = self.app_reference
        if self.app.web_service is not None:
            env[ENV_BACKEND_URL] = self.backend_url
        return {**env, **self.app.environment(self.spec)}

    def command_environment(self) -> dict[str, str]:
        """`environment()`, and where the command's evidence writers record what they could
        not write (the run's journal of losses, read back when the run finishes)."""
        journal = self.artifacts.losses.journal
        # The run's retry, quarantine and repeat settings, resolved here (its flags too), for
        # the command's pytest (quarantine entries one per line; files are read by pytest).
        retries = {
            SETTINGS_BY_NAME["retries"].env: str(self.config.retries),
            SETTINGS_BY_NAME["fail_on_flaky"].env: "1" if self.config.fail_on_flaky else "0",
            SETTINGS_BY_NAME["repeat_each"].env: str(self.config.repeat_each),
        }
        if self.config.quarantine:
            retries[SETTINGS_BY_NAME["quarantine"].env] = "".join(
                f"{entry}\n" for entry in self.config.quarantine
            )
        return {
            **self.environment(),
            **retries,
            **({LOSSES_ENV: str(journal)} if journal else {}),
        }

    def artifacts_line(self) -> str:
        """The CLI's last line: where the evidence is, and whether some of it is missing."""
        root = self.config.artifacts
        lost = self.artifacts.losses
        state = f"  EVIDENCE INCOMPLETE ({lost.summary()})" if lost else ""
        return f"artifacts  {root}/{state}  (report: {root}/{REPORT_FILE})"

    @property
    def verdict(self) -> Verdict:
        if self.error is not None or self.exited:
            return "error"
        if self.command_status not in (None, 0):
            return "failed"
        return "passed"

    def facts(self) -> dict[str, Any]:
        stack = self.stack.facts()
        prepare = {**self.prepared, **stack.pop("prepare", {})}
        return {
            **stack,
            **({"prepare": prepare} if prepare else {}),
            "provider_reason": self.choice.reason,
            "config": self.config.describe(),
            "started_at": self.started_at,
            "command": self.command,
            "command_status": self.command_status,
            "verdict": self.verdict,
            "error": self.error,
            "services_exited": [str(e) for e in self.exited],
        }

    def write_stack_json(self) -> None:
        self.artifacts.write_json(STACK_FILE, self.facts())

    def finish(
        self,
        command: Sequence[str] | None = None,
        command_status: int | None = None,
        exited: Sequence[ServiceExit] = (),
    ) -> None:
        """Write what the run leaves behind, once: stack.json, slices, summary, report.
        `command` ran against the stack and ended with `command_status`; `exited`: services
        that exited while it ran."""
        if self.finished:
            return
        self.finished = True
        self.command = list(command) if command is not None else None
        self.command_status = command_status
        self.exited = list(exited)
        with self.folder_lock:  # released once everything is written
            self._write_finished()

    def _write_finished(self) -> None:
        facts = self.facts()
        facts["finished_at"] = datetime.now(UTC).isoformat()
        self.artifacts.write_json(STACK_FILE, facts)
        problems = [self.error] if self.error else []
        problems += facts["services_exited"]
        info = RunInfo(
            run_id=self.run_id,
            provider=self.choice.name,
            app=self.app.name,
            verdict=self.verdict,
            command=self.command,
            command_status=self.command_status,
            error="\n".join(problems) or None,
            timings=dict(facts.get("timings") or {}),
            stack=facts,
            started_at=self.started_at,
            finished_at=facts["finished_at"],
        )
        # slices, run.json, summary.md, index.html; what could not be written is in them.
        # The history labels the failures; a shard leg's part is recorded by the merge.
        finished = finish_run(
            self.artifacts,
            info,
            history=self.config.history_folder,
            record_history=not is_shard_leg(self.command),
        )
        if self.artifacts.losses.journal is not None:
            self.artifacts.losses.journal.unlink(missing_ok=True)
        if running_on_github():
            # Failures as annotations on the PR; the summary with no dead relative links.
            print_annotations(finished.data, labels=finished.labels)
            write_job_summary(finished.github_summary, artifact_url=None)


@contextmanager
def open_stack(
    config: OrchestratorConfig | None = None,
    *,
    app: AppProfile | None = None,
    password: str | None = None,
    progress: Callable[[str], None] = stderr_progress,
    finish: bool = True,
) -> Iterator[Run]:
    """Yield a Run whose stack is started; it is stopped on the way out and, with `finish`,
    finished there too. With `finish=False` the caller calls `run.finish(command, status)`
    once the stack has stopped (e.g. after pytest has written its junit.xml); a run whose
    stack never started is finished here all the same (there is nothing more to wait for)."""
    config = config or OrchestratorConfig.load()
    app = app or load_profile(config.app, config.root)
    choice = choose_provider(config, images_obtainable(app))
    progress(f"provider {choice.name} ({choice.reason})")
    spec = app.spec(config, password=password or secrets.token_urlsafe(18))
    redactor = Redactor(spec.secrets)
    mask_secrets(redactor.needles)  # on GitHub Actions: *** in the job log from now on
    lock = contextlib.ExitStack()
    lock.enter_context(FolderLock.take(config.artifacts, spec.run_id))  # refused, or ours
    try:
        losses = WriteLosses(config.artifacts, journal=_journal(spec.run_id))
        artifacts = Artifacts(config.artifacts, redactor, losses).create()
        harvester = LogHarvester(
            artifacts.logs_dir, redact=redactor, run_id=spec.run_id, losses=losses
        )
        failure: BaseException | None = None
        try:
            prepared = _prepare(spec, app, choice, artifacts, progress)
        except BaseException as exc:  # recorded and finished below, like a failed start
            prepared, failure = Prepared(spec), exc
        stack = Stack(prepared.spec, choice.plugin.create(config), harvester, progress)
    except BaseException:
        lock.close()
        raise
    run = Run(config, app, prepared.spec, choice, artifacts, harvester, stack, prepared.facts, lock)
    started = False
    try:
        if failure is not None:
            raise failure
        with stack:
            started = True
            run.write_stack_json()
            yield run
    except OrchestratorError as exc:
        run.error = redactor("\n".join([str(exc), *getattr(exc, "__notes__", [])]))
        raise
    except BaseException as exc:  # interrupted (a signal), or a bug: never "passed"
        run.error = redactor(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if finish or not started:
            run.finish()


def _prepare(
    spec: StackSpec,
    app: AppProfile,
    choice: Choice,
    artifacts: Artifacts,
    progress: Callable[[str], None],
) -> Prepared:
    """The spec with its images resolved, for a provider that runs them."""
    if not getattr(choice.plugin, "runs_images", False):
        return Prepared(spec)
    prepared = resolve_images(spec, app, artifacts.images_log)
    if "images_seconds" in prepared.facts:
        progress(f"{choice.name}  images {prepared.facts['images_seconds']:.2f}s")
    return prepared


def _journal(run_id: str) -> Path | None:
    """An empty file outside the artifacts folder (whose disk may fill up) where the run's
    command records what it could not write; None when even that cannot be made."""
    try:
        handle, name = tempfile.mkstemp(prefix=f"ci-stack-{run_id}-losses-", suffix=".jsonl")
    except OSError:
        return None
    os.close(handle)
    return Path(name)
