"""The demo app's profile: everything the orchestrator learns about this application.

Its stack: `migrate` (one-shot Alembic upgrade), `backend` (the Flask app in testing mode,
served by waitress, with its live log stream) and N `worker` processes of the command bus.
Its images: the orchestrator's PostgreSQL+PGMQ image and `images/backend/Dockerfile`, whose
context holds this package's dependencies (installed on the host) and its sources.
Configured in the repository's pyproject.toml: `app = "backend.stack_profile:profile"`.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from orchestrator.config import ConfigError, OrchestratorConfig
from orchestrator.errors import OrchestratorError
from orchestrator.images import (
    SITE_ARCHIVE,
    ContextSource,
    ImageRecipe,
    postgres_pgmq_image,
    python_site_packages,
    source_tree,
)
from orchestrator.profile import AppProfile
from orchestrator.spec import (
    DatabaseSchema,
    DatabaseSpec,
    ExitProbe,
    HttpJudge,
    HttpProbe,
    ServiceSpec,
    StackSpec,
)

PACKAGE = Path(__file__).resolve().parent  # backend/
IMAGE_FOLDER = PACKAGE.parent / "images" / "backend"  # its Dockerfile
BACKEND_PORT = 8000
READY_PATH = "/api/health/readyz"
WORKERS_PATH = "/api/workers"
LOG_STREAM_PATH = "/api/testing/logs/stream"
RESET_PATH = "/api/testing/reset"
WORKER_CONCURRENCY = 4
# Connections at most: a worker's bus pool (2c+3) and handler pool (c+1); the backend's pool
# (DB_POOL_MAX_SIZE 20), its async bridge (4), a reset's own (1) and the migrate job (2).
WORKER_CONNECTIONS = (2 * WORKER_CONCURRENCY + 3) + (WORKER_CONCURRENCY + 1)
BACKEND_CONNECTIONS = 20 + 4 + 1 + 2
MAX_CONNECTIONS = 400
# Short SSE intervals keep the heartbeat baselines fast against a stack; exported to tests.
SSE_HEARTBEAT_INTERVAL = "1"
TASK_STREAM_IDLE_INTERVAL = "1"

# What `python -m backend migrate` reads to build the schema (and its master data): any change
# here makes a new schema key, so a cloned database is never older than the migrations.
SCHEMA_INPUTS = (
    "migrations",
    "setup",
    "services/migrate_command.py",
    "services/migration_service.py",
    "services/master_data.py",
)

COMMON_ENV = {
    "DATABASE_URL": "{database_url}",
    "FLASK_ENV": "testing",
    "LOG_LEVEL": "INFO",
    "PYTHONUNBUFFERED": "1",
    # `serve` and `worker` start while the database comes up: they import, then wait for it.
    "DATABASE_WAIT_SECONDS": "60",
}


def readyz_judge(status: int, body: str) -> tuple[bool, str]:
    """Ready when readyz answers 200 and its body says: database ok, no pending migration."""
    answer = f"HTTP {status} {body.strip()[:400]}"
    if status != 200:
        return False, answer
    try:
        checks = json.loads(body).get("checks", {})
    except (ValueError, AttributeError):
        return False, f"{answer} (not the readyz JSON)"
    database_ok = checks.get("database", {}).get("ok") is True
    migrations = checks.get("migrations", {})
    return database_ok and migrations.get("ok") is True and not migrations.get("pending"), answer


def live_workers_judge(count: int) -> HttpJudge:
    """Ready when GET /api/workers lists at least `count` workers that are not STOPPED."""

    def judge(status: int, body: str) -> tuple[bool, str]:
        if status != 200:
            return False, f"HTTP {status} {body.strip()[:200]}"
        try:
            workers = json.loads(body).get("workers", [])
        except (ValueError, AttributeError):
            return False, "not the workers JSON"
        live = [w for w in workers if isinstance(w, dict) and w.get("health") != "STOPPED"]
        return len(live) >= count, f"{len(live)} of {count} workers live"

    return judge


def check_connection_budget(workers: int) -> None:
    """Refuse up front a worker count the database cannot serve (else the workers fail
    late with "too many clients", buried in their logs)."""
    needed = BACKEND_CONNECTIONS + workers * WORKER_CONNECTIONS
    if needed > MAX_CONNECTIONS:
        most = (MAX_CONNECTIONS - BACKEND_CONNECTIONS) // WORKER_CONNECTIONS
        raise ConfigError(
            f"--workers {workers} would need up to {needed} database connections "
            f"({WORKER_CONNECTIONS} per worker), but the stack's database allows "
            f"{MAX_CONNECTIONS}: use --workers {most} or fewer"
        )


def worker_command() -> tuple[str, ...]:
    # Short visibility timeout and backoff keep e2e runs fast; heartbeats every second.
    return (
        "{python}", "-m", "backend", "worker",
        "--concurrency", str(WORKER_CONCURRENCY),
        "--visibility-timeout", "5",
        "--poll-interval", "1",
        "--backoff", "1",
        "--heartbeat-interval", "1",
        "--worker-id", "{instance}-{run_id}",
    )  # fmt: skip


def schema() -> DatabaseSchema:
    """The `migrate` job's result, keyed by a hash of its inputs."""
    return DatabaseSchema.from_files(("migrate",), [PACKAGE / name for name in SCHEMA_INPUTS])


def requirements() -> list[str]:
    """What the app imports: its project's dependencies (backend/pyproject.toml)."""
    with (PACKAGE / "pyproject.toml").open("rb") as handle:
        return [str(r) for r in tomllib.load(handle)["project"]["dependencies"]]


def image_files(cache_dir: Path) -> dict[str, ContextSource]:
    """The backend image's generated context: its dependencies installed on the host, and
    the package's sources (its own layer: a code change rebuilds only that)."""
    deps = python_site_packages(requirements(), image="backend", cache_dir=cache_dir)
    sources = {
        name: path
        for name, path in source_tree(PACKAGE, "project/backend").items()
        if name != "project/backend/pyproject.toml"
        and not name.startswith("project/backend/build/")  # a wheel build's leftovers
    }
    return {f"deps/{SITE_ARCHIVE}": deps.archive, **sources}


class BackendProfile(AppProfile):
    name = "backend"
    web_service = "backend"

    def database(self, config: OrchestratorConfig) -> DatabaseSpec:
        return DatabaseSpec(
            user="postgres",
            name="app",
            image="postgres-pgmq",
            extensions=("pgmq",),
            max_connections=MAX_CONNECTIONS,
            schema=schema(),
        )

    def services(self, config: OrchestratorConfig) -> tuple[ServiceSpec, ...]:
        check_connection_budget(config.workers)
        migrate = ServiceSpec(
            name="migrate",
            role="job",
            command=("{python}", "-m", "backend", "migrate"),
            env=COMMON_ENV,
            image="backend",
            probe=ExitProbe(),
        )
        # The backend boots while migrations run: its readyz passes only once none is pending.
        backend = ServiceSpec(
            name="backend",
            role="web",
            command=("{python}", "-m", "backend", "serve", "--host", "{host}", "--port", "{port}"),
            env={
                **COMMON_ENV,
                "SSE_HEARTBEAT_INTERVAL": SSE_HEARTBEAT_INTERVAL,
                "TASK_STREAM_IDLE_INTERVAL": TASK_STREAM_IDLE_INTERVAL,
                "WAITRESS_THREADS": "48",
            },
            image="backend",
            port=BACKEND_PORT,
            probe=HttpProbe(
                READY_PATH, f"GET {READY_PATH}: database ok, no pending migrations", readyz_judge
            ),
            log_stream=LOG_STREAM_PATH,
            waits_for_database=True,  # `serve` imports, then waits until the database answers
        )
        # Workers read the stored config: they start once migrations are done.
        worker = ServiceSpec(
            name="worker",
            role="worker",
            command=worker_command(),
            env=COMMON_ENV,
            image="backend",
            probe=HttpProbe(
                WORKERS_PATH,
                f"{config.workers} live worker(s) in GET {WORKERS_PATH}",
                live_workers_judge(config.workers),
                service="backend",
            ),
            depends_on=("migrate",),
            replicas=config.workers,
            waits_for_database=True,
        )
        return (migrate, backend, worker)

    def images(self) -> tuple[ImageRecipe, ...]:
        return (postgres_pgmq_image(), ImageRecipe("backend", IMAGE_FOLDER, image_files))

    def environment(self, spec: StackSpec) -> dict[str, str]:
        backend = spec.service("backend")
        # The intervals the backend was started with, for tests that time heartbeats.
        return {
            "STACK_SSE_HEARTBEAT_INTERVAL": backend.env.get("SSE_HEARTBEAT_INTERVAL", "5"),
            "STACK_TASK_IDLE_INTERVAL": backend.env.get("TASK_STREAM_IDLE_INTERVAL", "5"),
        }

    def reset(self, base_url: str, seed: bool, headers: Mapping[str, str]) -> dict[str, Any]:
        url = f"{base_url.rstrip('/')}{RESET_PATH}?seed={'true' if seed else 'false'}"
        response = requests.post(url, headers=dict(headers), timeout=60)
        if response.status_code != 200:
            raise OrchestratorError(
                f"the testing reset answered HTTP {response.status_code}: {response.text[:300]}"
            )
        return dict(response.json())


profile = BackendProfile()
