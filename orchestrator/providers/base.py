"""What a provider must offer the Stack: start a database, start a service, clean up."""

from __future__ import annotations

from typing import Any, Protocol

from orchestrator.spec import ProviderName, ServiceSpec, StackSpec


class RunningDatabase(Protocol):
    host_url: str  # reachable from this machine (tests, STACK_DATABASE_URL)
    service_url: str  # as the backend and workers see it

    def stop(self, timeout: float) -> None: ...

    def describe(self) -> dict[str, Any]: ...


class RunningService(Protocol):
    name: str
    url: str | None  # the backend's base URL from this machine; None for others

    def exit_code(self) -> int | None: ...

    def stop(self, timeout: float) -> None: ...

    def describe(self) -> dict[str, Any]: ...


class Provider(Protocol):
    name: ProviderName

    def prepare(self, spec: StackSpec) -> dict[str, Any]:
        """Check prerequisites and build/locate what is needed; facts for stack.json."""
        ...

    def start_database(self, spec: StackSpec) -> RunningDatabase: ...

    def start_service(
        self, spec: StackSpec, service: ServiceSpec, database: RunningDatabase
    ) -> RunningService: ...

    def log_tail(self, name: str, lines: int = 40) -> str: ...

    def close(self) -> None:
        """Remove what the provider created besides services (networks, temp dirs)."""
        ...
