"""A run: one stack with everything around it, started and finished in one place.

`open_stack(config)` resolves the app profile and the provider, takes the artifacts folder
(one run owns it: an earlier run's content is cleared; a live run's folder, or one that is
not an earlier run's, is refused before anything starts),
starts the Stack with a LogHarvester stamping this run's id, and on the way out stops it and
finishes the run once: stack.json, log slices of failed tests, summary.md, index.html, the
GitHub job summary. The CLI (`run`, `up`), the pytest plugin and library users all get the
same folder.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.artifacts import Artifacts, RunInfo, Verdict, finish_run
from orchestrator.artifacts.layout import LOSSES_ENV, REPORT_FILE, WriteLosses
from orchestrator.config import OrchestratorConfig
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
from orchestrator.profile import AppProfile, load_profile
from orchestrator.providers.registry import Choice, choose_provider
from orchestrator.redaction import Redactor
from orchestrator.spec import StackSpec
from orchestrator.stack import ServiceExit, Stack, stderr_progress


@dataclass
class Run:
    """One run in progress: its stack, folder and outcome (filled in by whoever drives it)."""

    config: OrchestratorConfig
    app: AppProfile
    spec: StackSpec
    choice: Choice
    artifacts: Artifacts
    harvester: LogHarvester
    stack: Stack
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    command: list[str] | None = None
    command_status: int | None = None
    error: str | None = None
    exited: list[ServiceExit] = field(default_factory=list)
    finished: bool = False

    @property
    def run_id(self) -> str:
        return self.spec.run_id

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
        if self.config.app is not None:
            env[ENV_APP] = self.config.app
        if self.app.web_service is not None:
            env[ENV_BACKEND_URL] = self.backend_url
        return {**env, **self.app.environment(self.spec)}

    def command_environment(self) -> dict[str, str]:
        """`environment()`, and where the command's evidence writers record what they could
        not write (the run's journal of losses, read back when the run finishes)."""
        journal = self.artifacts.losses.journal
        return {**self.environment(), **({LOSSES_ENV: str(journal)} if journal else {})}

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
        return {
            **self.stack.facts(),
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
        self.artifacts.write_json("stack.json", self.facts())

    def finish(self) -> None:
        """Write what the run leaves behind, once: stack.json, slices, summary, report."""
        if self.finished:
            return
        self.finished = True
        facts = self.facts()
        facts["finished_at"] = datetime.now(UTC).isoformat()
        self.artifacts.write_json("stack.json", facts)
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
        # slices, run.json, summary.md, index.html; what could not be written is in them
        finished = finish_run(self.artifacts, info)
        if self.artifacts.losses.journal is not None:
            self.artifacts.losses.journal.unlink(missing_ok=True)
        if running_on_github():
            # Failures as annotations on the PR; the summary with no dead relative links.
            print_annotations(finished.data)
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
    """Yield a Run whose stack is started; it is stopped, recorded and finished on the way
    out (with `finish=False` the caller calls `run.finish()` later, e.g. after pytest has
    written its junit.xml)."""
    config = config or OrchestratorConfig.load()
    app = app or load_profile(config.app)
    choice = choose_provider(config, app)
    progress(f"provider {choice.name} ({choice.reason})")
    spec = app.spec(config, password=password or secrets.token_urlsafe(18))
    redactor = Redactor(spec.secrets)
    mask_secrets(redactor.needles)  # on GitHub Actions: *** in the job log from now on
    with FolderLock.take(config.artifacts, spec.run_id):  # refused, or ours and emptied
        losses = WriteLosses(config.artifacts, journal=_journal(spec.run_id))
        artifacts = Artifacts(config.artifacts, redactor, losses).create()
        harvester = LogHarvester(
            artifacts.logs_dir, redact=redactor, run_id=spec.run_id, losses=losses
        )
        provider = choice.plugin.create(config)
        stack = Stack(spec, provider, harvester, app, progress)
        run = Run(config, app, spec, choice, artifacts, harvester, stack)
        try:
            with stack:
                run.write_stack_json()
                yield run
        except OrchestratorError as exc:
            run.error = redactor("\n".join([str(exc), *getattr(exc, "__notes__", [])]))
            raise
        except BaseException as exc:  # interrupted (a signal), or a bug: never "passed"
            run.error = redactor(f"{type(exc).__name__}: {exc}")
            raise
        finally:
            if finish:
                run.finish()


def _journal(run_id: str) -> Path | None:
    """An empty file outside the artifacts folder (whose disk may fill up) where the run's
    command records what it could not write; None when even that cannot be made."""
    try:
        handle, name = tempfile.mkstemp(prefix=f"ci-stack-{run_id}-losses-", suffix=".jsonl")
    except OSError:
        return None
    os.close(handle)
    return Path(name)
