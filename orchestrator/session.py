"""Start one stack with everything around it: provider choice, artifacts, logs, run registry."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator import runs
from orchestrator.artifacts import Artifacts
from orchestrator.log_harvest import LogHarvester
from orchestrator.provider_choice import choose_provider, make_provider
from orchestrator.redaction import Redactor
from orchestrator.spec import build_spec
from orchestrator.stack import Stack, stderr_progress

if TYPE_CHECKING:
    from orchestrator.pytest_plugin import StackHandle


@dataclass(frozen=True)
class StackOptions:
    provider: str | None = None
    workers: int = 2
    artifacts_dir: Path = Path("artifacts/stack")
    seed: bool = False
    timeout: float = 60.0
    pg_bindir: Path | None = None
    password: str | None = None  # generated per run when None


@contextmanager
def open_stack(
    options: StackOptions, progress: Callable[[str], None] = stderr_progress
) -> Iterator[Stack]:
    """Yield a started Stack; everything is torn down and recorded on the way out."""
    choice = choose_provider(options.provider)
    progress(f"provider {choice.name} ({choice.reason})")
    spec = build_spec(
        workers=options.workers,
        seed=options.seed,
        timeout=options.timeout,
        password=options.password,
    )
    redactor = Redactor(spec.secrets)
    artifacts = Artifacts(options.artifacts_dir, redactor).create()
    harvester = LogHarvester(artifacts.logs_dir, redact=redactor)
    provider = make_provider(choice, harvester, options.pg_bindir)
    runs.register(spec.run_id)
    try:
        with Stack(spec, provider, artifacts, harvester, progress) as stack:
            yield stack
    finally:
        runs.unregister(spec.run_id)


@contextmanager
def start_session_stack() -> Iterator[StackHandle]:
    """For the pytest plugin when no stack is named in the environment."""
    from orchestrator.pytest_plugin import StackHandle

    options = StackOptions(
        provider=os.environ.get("STACK_PROVIDER"),
        artifacts_dir=Path(os.environ.get("STACK_ARTIFACTS", "artifacts/pytest-stack")),
    )
    with open_stack(options) as stack:
        yield StackHandle(
            backend_url=stack.backend_url,
            database_url=stack.database_url,
            run_id=stack.spec.run_id,
            artifacts_dir=stack.artifacts.root,
            provider=stack.provider.name,
        )
