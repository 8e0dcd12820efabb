"""What a provider offers the Stack: run a database and services from their specs.

A provider is made by a `ProviderPlugin` (registered by name, see `registry`), starts
things and hands back `Running` handles; the Stack waits on probes, follows `logs()` into
the harvester and stops everything. Providers never wait on readiness or write logs, and
see only the spec: a provider that runs images (`runs_images`) gets them already resolved
in `spec.images` by the prepare step (`orchestrator.prepare`), never the app profile.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from orchestrator.spec import ServiceSpec, StackSpec

if TYPE_CHECKING:
    from orchestrator.config import OrchestratorConfig

LogLines = Iterable[bytes | str]


class Running(Protocol):
    """One started thing (a service instance or the database)."""

    name: str

    def exit_code(self) -> int | None:
        """None while it runs; its exit code (negative: killed by that signal) once gone."""
        ...

    def logs(self) -> LogLines | None:
        """Its output as lines until it stops (None: it has none to follow)."""
        ...

    def log_tail(self, lines: int) -> str | None:
        """Its last lines from its own source, or None to use the harvested copy."""
        ...

    def stop(self, timeout: float) -> None: ...

    def describe(self) -> dict[str, Any]: ...


class RunningService(Running, Protocol):
    url: str | None  # base URL from this machine when the service has a port


class RunningDatabase(Running, Protocol):
    host_url: str  # reachable from this machine (tests, STACK_DATABASE_URL)
    service_url: str  # as the services see it
    # True when it was started from a copy that already holds what the spec's schema jobs
    # build (the Stack skips them); known as soon as start_database() returns.
    schema_ready: bool


class Provider(Protocol):
    name: str

    def prepare(self, spec: StackSpec) -> dict[str, Any]:
        """Check prerequisites and make what the run needs besides its services (a network,
        a schema copy); facts for stack.json."""
        ...

    def start_database(self, spec: StackSpec) -> RunningDatabase: ...

    def start_service(
        self, spec: StackSpec, service: ServiceSpec, instance: str, database: RunningDatabase
    ) -> RunningService: ...

    def close(self) -> None:
        """Remove what the provider created besides services (networks, temp dirs)."""
        ...


class ProviderPlugin(Protocol):
    """The registered face of a provider: can it run here, and make one."""

    name: str
    auto_rank: int  # `auto` tries plugins from the lowest rank up (docker 10, local 20)
    # True: it runs the spec's images (`spec.images`), resolved before the stack exists;
    # `auto` then also asks whether the app's images can be had here.
    runs_images: bool

    def available(self, config: OrchestratorConfig) -> tuple[bool, str]:
        """Can it run here (say, a daemon answers)? (False, why) makes `auto` pass it over."""
        ...

    def create(self, config: OrchestratorConfig) -> Provider: ...
