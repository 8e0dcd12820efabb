"""The Stack: start db → migrate → backend + workers (in parallel), each gated; stop in reverse.

A Stack that fails half-way still tears down what it started and still writes stack.json.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import requests

from orchestrator.artifacts import Artifacts
from orchestrator.errors import StackStartError, TeardownErrors
from orchestrator.log_harvest import LogHarvester
from orchestrator.providers.base import Provider, RunningDatabase, RunningService
from orchestrator.readiness import ProbeResult, Readiness, http_ready, workers_ready
from orchestrator.spec import ServiceSpec, StackSpec

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]


def stderr_progress(message: str) -> None:
    print(f"stack  {message}", file=sys.stderr, flush=True)


@dataclass
class StackState:
    database: RunningDatabase | None = None
    services: list[RunningService] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    backend_url: str | None = None


class Stack:
    """Context manager around one running stack."""

    def __init__(
        self,
        spec: StackSpec,
        provider: Provider,
        artifacts: Artifacts,
        harvester: LogHarvester,
        progress: Progress = stderr_progress,
    ) -> None:
        self.spec = spec
        self.provider = provider
        self.artifacts = artifacts
        self.harvester = harvester
        self.progress = progress
        self.state = StackState()
        self._started_at = 0.0
        self._abort = threading.Event()

    # -- urls for whoever runs against the stack -----------------------------------------

    @property
    def backend_url(self) -> str:
        if self.state.backend_url is None:
            raise RuntimeError("the stack is not started")
        return self.state.backend_url

    @property
    def database_url(self) -> str:
        if self.state.database is None:
            raise RuntimeError("the stack is not started")
        return self.state.database.host_url

    def environment(self) -> dict[str, str]:
        """What a command run against the stack gets in its environment."""
        return {
            "STACK_BACKEND_URL": self.backend_url,
            "STACK_DATABASE_URL": self.database_url,
            "STACK_RUN_ID": self.spec.run_id,
            "STACK_ARTIFACTS_DIR": str(self.artifacts.root.resolve()),
            "STACK_PROVIDER": self.provider.name,
            # The intervals the backend was started with, for tests that time heartbeats.
            "STACK_SSE_HEARTBEAT_INTERVAL": self.spec.backend.env.get(
                "SSE_HEARTBEAT_INTERVAL", "5"
            ),
            "STACK_TASK_IDLE_INTERVAL": self.spec.backend.env.get("TASK_STREAM_IDLE_INTERVAL", "5"),
        }

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException as exc:
            try:
                self.__exit__(*sys.exc_info())
            except Exception as teardown:  # keep the start error; note the teardown's
                exc.add_note(f"while stopping the half-started stack: {teardown}")
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        spec = self.spec
        self._started_at = time.perf_counter()
        self.state.facts["prepare"] = self._timed("prepare", lambda: self.provider.prepare(spec))
        database = self._timed("db ready", lambda: self.provider.start_database(spec))
        self.state.database = database
        # The backend boots while migrations run: its readiness gate (readyz) passes only once
        # no migration is pending. Workers start after migrations (they read the stored config).
        with ThreadPoolExecutor(max_workers=1) as pool:
            backend_future = pool.submit(self._start_backend, database)
            try:
                self._timed("migrations", lambda: self._run_migrations(database))
                self._start_workers(database)
            except BaseException:
                self._abort.set()  # the backend's wait ends at its next probe
                with contextlib.suppress(Exception):
                    backend_future.result()
                raise
            backend_future.result()
        self._timed(f"{len(spec.workers)} workers ready", self._wait_for_workers)
        if spec.seed:
            self._timed("seed", self._seed)
        self.state.timings["total"] = time.perf_counter() - self._started_at
        self.write_stack_json()
        self.progress(
            "ready  " + " · ".join(f"{k} {v:.2f}s" for k, v in self.state.timings.items())
        )

    def _timed(self, label: str, step: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = step()
        seconds = time.perf_counter() - started
        self.state.timings[label] = seconds
        self.progress(f"{self.provider.name}  {label} {seconds:.2f}s")
        return result

    def _run_migrations(self, database: RunningDatabase) -> None:
        job = self.provider.start_service(self.spec, self.spec.migrate, database)
        self.state.services.append(job)
        deadline = time.perf_counter() + self.spec.timeout
        while (code := job.exit_code()) is None:
            if time.perf_counter() > deadline:
                raise StackStartError(
                    "migrate",
                    f"migrations to finish (timed out after {self.spec.timeout:.0f}s)",
                    "still running",
                    self.provider.log_tail("migrate"),
                )
            time.sleep(0.02)
        if code != 0:
            raise StackStartError(
                "migrate",
                "exit code 0",
                f"exit code {code}",
                self.provider.log_tail("migrate"),
                exit_code=code,
            )

    def _start_backend(self, database: RunningDatabase) -> None:
        started = time.perf_counter()
        backend = self.provider.start_service(self.spec, self.spec.backend, database)
        self.state.services.append(backend)
        assert backend.url is not None
        ready = http_ready(backend.url + "/api/health/readyz")

        def probe() -> ProbeResult:
            if self._abort.is_set():
                raise StackStartError(
                    "backend", "readiness", "start aborted: an earlier step failed"
                )
            return ready()

        self._readiness(self.spec.backend, backend, probe)
        self.state.backend_url = backend.url
        # Follow the backend's own log stream from the moment it is ready.
        self.harvester.add_sse_source("backend", backend.url + "/api/testing/logs/stream")
        self.state.timings["backend ready"] = time.perf_counter() - started
        self.progress(
            f"{self.provider.name}  backend ready {self.state.timings['backend ready']:.2f}s"
        )

    def _start_workers(self, database: RunningDatabase) -> None:
        for worker in self.spec.workers:
            self.state.services.append(self.provider.start_service(self.spec, worker, database))

    def _wait_for_workers(self) -> None:
        if not self.spec.workers:
            return
        workers = [s for s in self.state.services if s.name.startswith("worker-")]

        def first_exit() -> int | None:
            for worker in workers:
                code = worker.exit_code()
                if code is not None:
                    return code
            return None

        def tails() -> str:
            return "\n".join(
                f"[{w.name}] {line}"
                for w in workers
                for line in self.provider.log_tail(w.name, 10).splitlines()
            )

        Readiness(
            service="workers",
            awaited=self.spec.workers[0].probe.description,
            probe=workers_ready(self.backend_url + "/api/workers", len(self.spec.workers)),
            exit_code=first_exit,
            log_tail=tails,
        ).wait(self.spec.timeout)

    def _readiness(
        self, service: ServiceSpec, running: RunningService, probe: Callable[..., Any]
    ) -> float:
        return Readiness(
            service=service.name,
            awaited=service.probe.description,
            probe=probe,
            exit_code=running.exit_code,
            log_tail=lambda: self.provider.log_tail(service.name),
        ).wait(self.spec.timeout)

    def _seed(self) -> None:
        response = requests.post(self.backend_url + "/api/testing/reset?seed=true", timeout=30)
        if response.status_code != 200:
            raise StackStartError(
                "backend",
                "the seeded reset",
                f"HTTP {response.status_code} {response.text[:300]}",
                self.provider.log_tail("backend"),
            )

    def stop(self) -> None:
        """Stop services (workers, backend, jobs) then the database; collect every error."""
        errors: list[str] = []
        started = time.perf_counter()
        if "total" not in self.state.timings and (self.state.services or self.state.database):
            # A start that failed half-way: record what ran before it is gone.
            try:
                self.write_stack_json()
            except Exception as exc:
                errors.append(f"stack.json: {exc}")
        # Workers drain together first, then the backend (closing its log stream), then jobs.
        workers = [s for s in self.state.services if s.name.startswith("worker-")]
        others = [s for s in reversed(self.state.services) if s not in workers]
        for group in (workers, others):
            errors.extend(self._stop_group(group))
        self.state.services.clear()
        if self.state.database is not None:
            try:
                self.state.database.stop(timeout=10)
            except Exception as exc:
                errors.append(f"db: {exc}")
            self.state.database = None
        try:
            self.provider.close()
        except Exception as exc:
            errors.append(f"provider: {exc}")
        errors.extend(f"log harvest: {e}" for e in self.harvester.stop(timeout=5))
        self.state.timings["teardown"] = time.perf_counter() - started
        self.progress(f"{self.provider.name}  teardown {self.state.timings['teardown']:.2f}s")
        try:
            self.write_stack_json()
        except Exception as exc:
            errors.append(f"stack.json: {exc}")
        if errors:
            raise TeardownErrors(errors)

    @staticmethod
    def _stop_group(services: list[RunningService]) -> list[str]:
        def stop_one(service: RunningService) -> str | None:
            try:
                service.stop(timeout=10)
            except Exception as exc:
                return f"{service.name}: {exc}"
            return None

        if not services:
            return []
        with ThreadPoolExecutor(max_workers=len(services)) as pool:
            return [e for e in pool.map(stop_one, services) if e]

    def facts(self) -> dict[str, Any]:
        return {
            "run_id": self.spec.run_id,
            "provider": self.provider.name,
            "backend_url": self.state.backend_url,
            "database": self.state.database.describe() if self.state.database else None,
            "services": {s.name: s.describe() for s in self.state.services},
            "timings": dict(self.state.timings),
            "workers": len(self.spec.workers),
            "seed": self.spec.seed,
            **self.state.facts,
        }

    def write_stack_json(self) -> None:
        existing: dict[str, Any] = {}
        path = self.artifacts.root / "stack.json"
        if path.exists():
            try:
                import json

                existing = json.loads(path.read_text())
            except ValueError:
                existing = {}
        facts = self.facts()
        # Keep what an earlier write knew (e.g. services, gone after teardown).
        for key in ("database", "services", "backend_url"):
            if not facts.get(key) and existing.get(key):
                facts[key] = existing[key]
        self.artifacts.write_json("stack.json", facts)
