"""The stack as data: one frozen spec from which both providers and compose.yaml are derived."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

ProviderName = Literal["local", "docker"]
ProviderChoice = Literal["auto", "local", "docker"]
PROVIDER_CHOICES: tuple[ProviderChoice, ...] = ("auto", "local", "docker")
Role = Literal["db", "migrate", "backend", "worker"]

RUN_LABEL = "ci-stack.run-id"  # every container, network and temp dir carries the run id
BACKEND_PORT = 8000
DB_PORT = 5432


@dataclass(frozen=True)
class HttpProbe:
    """Ready when GET `path` answers 200 and, if given, the JSON has `json_key` truthy/equal."""

    path: str
    description: str


@dataclass(frozen=True)
class WorkersProbe:
    """Ready when the backend's /api/workers lists at least `count` live workers."""

    count: int
    path: str = "/api/workers"

    @property
    def description(self) -> str:
        return f"{self.count} live worker(s) in GET {self.path}"


@dataclass(frozen=True)
class ExitProbe:
    """Ready when the process has exited with code 0 (one-shot jobs like migrate)."""

    description: str = "exit code 0"


@dataclass(frozen=True)
class DatabaseProbe:
    description: str = "PostgreSQL accepting connections with PGMQ available"


Probe = HttpProbe | WorkersProbe | ExitProbe | DatabaseProbe


@dataclass(frozen=True)
class ServiceSpec:
    """One service: the backend image/CLI arguments, its environment, port and probe."""

    name: str
    role: Role
    args: tuple[str, ...]  # after `python -m backend`
    env: Mapping[str, str]
    probe: Probe
    port: int | None = None


@dataclass(frozen=True)
class DatabaseSpec:
    user: str
    password: str
    name: str
    port: int = DB_PORT
    probe: Probe = field(default_factory=DatabaseProbe)


@dataclass(frozen=True)
class StackSpec:
    run_id: str
    database: DatabaseSpec
    migrate: ServiceSpec
    backend: ServiceSpec
    workers: tuple[ServiceSpec, ...]
    seed: bool = False
    testing: bool = True
    timeout: float = 60.0

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never reach an artifact."""
        return (self.database.password,)

    def services_in_start_order(self) -> tuple[ServiceSpec, ...]:
        return (self.migrate, self.backend, *self.workers)


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S") + "-" + secrets.token_hex(3)


def worker_args(concurrency: int = 4) -> tuple[str, ...]:
    # Short visibility timeout and backoff keep e2e runs fast; heartbeats every second.
    return (
        "worker",
        "--concurrency",
        str(concurrency),
        "--visibility-timeout",
        "5",
        "--poll-interval",
        "1",
        "--backoff",
        "1",
        "--heartbeat-interval",
        "1",
    )


def build_spec(
    workers: int = 2,
    seed: bool = False,
    timeout: float = 60.0,
    run_id: str | None = None,
    password: str | None = None,
) -> StackSpec:
    """The stack every provider starts: db, migrate, backend (testing mode), N workers."""
    if workers < 0:
        raise ValueError("workers must be >= 0")
    run_id = run_id or new_run_id()
    database = DatabaseSpec(
        user="postgres", password=password or secrets.token_urlsafe(18), name="app"
    )
    common_env = {"FLASK_ENV": "testing", "LOG_LEVEL": "INFO"}
    backend = ServiceSpec(
        name="backend",
        role="backend",
        args=("serve", "--host", "0.0.0.0", "--port", str(BACKEND_PORT)),
        # Short SSE intervals keep the heartbeat baselines fast against a stack.
        env={
            **common_env,
            "SSE_HEARTBEAT_INTERVAL": "1",
            "TASK_STREAM_IDLE_INTERVAL": "1",
            "WAITRESS_THREADS": "48",
        },
        probe=HttpProbe(
            "/api/health/readyz", "GET /api/health/readyz: database ok, no pending migrations"
        ),
        port=BACKEND_PORT,
    )
    template = ServiceSpec(
        name="worker",
        role="worker",
        args=worker_args(),
        env=common_env,
        probe=WorkersProbe(count=workers),
    )
    return StackSpec(
        run_id=run_id,
        database=database,
        migrate=ServiceSpec(
            name="migrate", role="migrate", args=("migrate",), env=common_env, probe=ExitProbe()
        ),
        backend=backend,
        workers=tuple(replace(template, name=f"worker-{index}") for index in range(1, workers + 1)),
        seed=seed,
        timeout=timeout,
    )
