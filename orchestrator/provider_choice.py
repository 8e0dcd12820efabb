"""Which provider runs the stack: `auto` picks docker when a daemon answers, else local."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import OrchestratorError, PrerequisiteMissing
from orchestrator.log_harvest import LogHarvester
from orchestrator.providers.base import Provider
from orchestrator.spec import PROVIDER_CHOICES, ProviderChoice, ProviderName


@dataclass(frozen=True)
class Choice:
    name: ProviderName
    reason: str


def docker_answers(timeout: float = 2.0) -> tuple[bool, str]:
    """(True, version) when a Docker daemon answers a ping, else (False, why)."""
    try:
        import docker
    except ImportError:
        return False, "the docker Python package is not installed (pip install '.[e2e]')"
    try:
        client = docker.from_env(timeout=int(max(1, timeout)))
        client.ping()
        version = client.version().get("Version", "?")
        client.close()
    except Exception as exc:
        return False, f"no Docker daemon answered ({type(exc).__name__})"
    return True, f"Docker {version} answered"


def choose_provider(requested: str | None) -> Choice:
    """Resolve --provider / STACK_PROVIDER; explain the choice."""
    value = (requested or os.environ.get("STACK_PROVIDER") or "auto").strip().lower()
    if value not in PROVIDER_CHOICES:
        raise OrchestratorError(
            f"unknown provider {value!r}: use one of {', '.join(PROVIDER_CHOICES)} "
            "(--provider or STACK_PROVIDER)"
        )
    chosen: ProviderChoice = value
    if chosen == "local":
        return Choice("local", "requested")
    ok, why = docker_answers()
    if chosen == "docker":
        if not ok:
            raise PrerequisiteMissing(
                f"--provider docker needs a Docker engine, but {why}",
                "start Docker (e.g. `dockerd &` or `systemctl start docker`), "
                "or use --provider local",
            )
        return Choice("docker", f"requested; {why}")
    if ok:
        return Choice("docker", f"auto: {why}")
    return Choice("local", f"auto: {why}; using the embedded stack")


def make_provider(
    choice: Choice, harvester: LogHarvester, pg_bindir: Path | None = None
) -> Provider:
    if choice.name == "docker":
        from orchestrator.providers.docker import DockerProvider

        return DockerProvider(harvester)
    from orchestrator.providers.local import LocalProvider

    return LocalProvider(harvester, pg_bindir=pg_bindir)
