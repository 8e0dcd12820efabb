"""The Stack: start the database, then the services in dependency order (in parallel where
the graph allows), each gated by its own probe; watch them; stop in reverse order.

A Stack that fails half-way still stops what it started. It knows no application: the
StackSpec (from an app profile, its images resolved by the prepare step) says what to run,
a Provider runs it, the LogHarvester records every line.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from orchestrator.errors import StackStartError, StartAborted, TeardownErrors
from orchestrator.log_harvest import LogHarvester
from orchestrator.providers.base import Provider, Running, RunningDatabase, RunningService
from orchestrator.readiness import ProbeFn, Readiness, http_ready, job_done, postgres_ready
from orchestrator.spec import DB_SERVICE, HttpProbe, ServiceSpec, StackSpec

Progress = Callable[[str], None]
_print_lock = threading.Lock()
SERVICE_STOP_TIMEOUT = 10.0
DATABASE_POLL_INTERVAL = 0.02  # a connection attempt is cheap; the services wait on it
GROUP_TAIL_INSTANCES = 3  # log tails shown when a replicated service fails to start


def stderr_progress(message: str) -> None:
    """One whole line per call, never interleaved with another thread's."""
    with _print_lock:
        sys.stderr.write(f"stack  {message}\n")
        sys.stderr.flush()


@dataclass(frozen=True)
class ServiceExit:
    """A service of the stack that exited while it should have been running."""

    name: str
    exit_code: int
    seconds_into_run: float

    def __str__(self) -> str:
        at = f"{self.seconds_into_run:.1f} s"
        return f"{self.name} exited with {self.exit_code} at {at} into the run"


@dataclass
class StackState:
    database: RunningDatabase | None = None
    services: dict[str, RunningService] = field(default_factory=dict)  # instance → running
    timings: dict[str, float] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)  # describe() at start
    database_facts: dict[str, Any] | None = None


class Stack:
    """Context manager around one running stack."""

    def __init__(
        self,
        spec: StackSpec,
        provider: Provider,
        harvester: LogHarvester,
        progress: Progress = stderr_progress,
    ) -> None:
        self.spec = spec
        self.provider = provider
        self.harvester = harvester
        self.progress = progress
        self.state = StackState()
        self._lock = threading.Lock()
        self._ready: set[str] = set()
        self._changed = threading.Condition(self._lock)
        self._failure: str | None = None
        self._started_at = 0.0

    # -- what runs --------------------------------------------------------------------------

    def url(self, service: str) -> str:
        """The base URL of a started service (its first instance) from this machine."""
        for running in self.instances(self.spec.service(service)):
            if running.url:
                return running.url
        raise KeyError(f"no running service {service!r} with a URL")

    @property
    def database_url(self) -> str:
        if self.state.database is None:
            raise RuntimeError("the stack is not started")
        return self.state.database.host_url

    def instances(self, service: ServiceSpec) -> list[RunningService]:
        return [self.state.services[n] for n in service.instances() if n in self.state.services]

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException as exc:
            try:
                self.stop()
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
        launched = time.perf_counter()
        database = self.provider.start_database(spec)  # may still be starting
        self.state.database = database
        self._follow(database)
        services = [s for s in spec.services if s.instances()]
        self._ready |= {s.name for s in spec.services if not s.instances()}  # e.g. 0 workers
        with ThreadPoolExecutor(max_workers=len(services) + 1) as pool:
            futures = [pool.submit(self._database_ready, launched)]
            futures += [pool.submit(self._bring_up, s) for s in services]
            errors: list[BaseException] = []
            for future in futures:
                try:
                    future.result()
                except BaseException as exc:
                    errors.append(exc)
        if errors:
            # The first real failure, not the "aborted" echoes of its siblings.
            primary = [e for e in errors if not isinstance(e, StartAborted)]
            raise (primary or errors)[0]
        self.state.timings["total"] = time.perf_counter() - self._started_at
        self.progress(
            "ready  "
            + " · ".join(
                f"{k} {v:.2f}s"
                for k, v in self.state.timings.items()
                if k != "prepare" or v >= 0.01
            )
        )

    def _timed(self, label: str, step: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = step()
        self._record(label, time.perf_counter() - started)
        return result

    def _record(self, label: str, seconds: float) -> None:
        with self._lock:
            self.state.timings[label] = seconds
        self.progress(f"{self.provider.name}  {label} {seconds:.2f}s")

    def _database_ready(self, launched: float) -> None:
        """Wait until the database answers; services that wait for it start meanwhile."""
        database = self.state.database
        assert database is not None
        try:
            Readiness(
                service=DB_SERVICE,
                awaited=self.spec.database.probe.description,
                probe=postgres_ready(database.host_url, self.spec.database.extensions),
                exit_code=database.exit_code,
                log_tail=lambda: self.log_tail(DB_SERVICE),
                poll_interval=DATABASE_POLL_INTERVAL,
                abort=lambda: self._failure,
            ).wait(self.spec.timeout)
            self.state.database_facts = database.describe()
        except BaseException:
            with self._changed:
                self._failure = self._failure or f"{DB_SERVICE} failed"
                self._changed.notify_all()
            raise
        self._record(f"{DB_SERVICE} ready", time.perf_counter() - launched)
        with self._changed:
            self._ready.add(DB_SERVICE)
            self._changed.notify_all()

    def _schema_cloned(self, service: ServiceSpec) -> bool:
        """True for a schema job whose result the database already holds (a clone)."""
        schema = self.spec.database.schema
        database = self.state.database
        return (
            schema is not None
            and service.name in schema.jobs
            and database is not None
            and database.schema_ready
        )

    def _bring_up(self, service: ServiceSpec) -> None:
        """Wait for dependencies, start every instance, wait on the probe, mark ready."""
        try:
            if self._schema_cloned(service):
                self.state.facts.setdefault("skipped", []).append(
                    f"{service.name}: the database was cloned from its schema snapshot"
                )
                self._record(f"{service.name} done", 0.0)
                with self._changed:
                    self._ready.add(service.name)
                    self._changed.notify_all()
                return
            database_first = () if service.waits_for_database else (DB_SERVICE,)
            self._wait_for((*database_first, *service.depends_on))
            started = time.perf_counter()
            assert self.state.database is not None
            for instance in service.instances():
                try:
                    running = self.provider.start_service(
                        self.spec, service, instance, self.state.database
                    )
                except OSError as exc:
                    raise StackStartError(
                        instance, "the process to start", f"{type(exc).__name__}: {exc}"
                    ) from None
                with self._lock:
                    self.state.services[instance] = running
                self._follow(running)
            self._wait_ready(service)
            for running in self.instances(service):
                self.state.seen[running.name] = running.describe()
            if service.log_stream:
                url = self.url(service.name) + service.log_stream
                self.harvester.add_sse_source(service.name, url)
            label = f"{service.name} done" if service.is_job else f"{service.name} ready"
            if service.replicas is not None:
                label = f"{service.replicas} {service.name} ready"
            self._record(label, time.perf_counter() - started)
            with self._changed:
                self._ready.add(service.name)
                self._changed.notify_all()
        except BaseException as exc:
            with self._changed:
                self._failure = self._failure or f"{service.name} failed"
                self._changed.notify_all()
            raise exc

    def _wait_for(self, names: tuple[str, ...]) -> None:
        """Until `names` are ready, or one failed. Each of them fails by its own deadline, so
        a waiter started early (say, while the database comes up) does not time out first and
        hide the real diagnosis; twice the timeout is only a backstop."""
        wanted = set(names)
        with self._changed:
            self._changed.wait_for(
                lambda: wanted <= self._ready or self._failure is not None,
                timeout=2 * self.spec.timeout,
            )
            if self._failure is not None:
                raise StartAborted(", ".join(sorted(wanted)), "its dependencies", self._failure)
            if not wanted <= self._ready:
                late = ", ".join(sorted(wanted - self._ready))
                raise StackStartError(
                    late, "readiness", f"not ready after {2 * self.spec.timeout:.0f}s"
                )

    def _wait_ready(self, service: ServiceSpec) -> None:
        instances = self.instances(service)
        probe: ProbeFn
        if service.is_job:
            job = instances[0]
            probe, exit_code = job_done(job.exit_code)
        else:
            probe = self._probe_for(service)

            def exit_code() -> int | None:
                for running in instances:
                    code = running.exit_code()
                    if code is not None:
                        return code
                return None

        def tails() -> str:
            if len(instances) == 1:
                return self.log_tail(instances[0].name)
            # The instances that died (else the last few), a few lines each: readable.
            shown = [r for r in instances if r.exit_code() is not None] or instances[-3:]
            return "\n".join(
                f"[{r.name}] {line}"
                for r in shown[:GROUP_TAIL_INSTANCES]
                for line in self.log_tail(r.name, 10).splitlines()
            )

        Readiness(
            service=service.name,
            awaited=service.probe.description,
            probe=probe,
            exit_code=exit_code,
            log_tail=tails,
            abort=lambda: self._failure,
        ).wait(self.spec.timeout)

    def _probe_for(self, service: ServiceSpec) -> ProbeFn:
        probe = service.probe
        if not isinstance(probe, HttpProbe):
            raise StackStartError(service.name, probe.description, "unsupported probe type")
        target = probe.service or service.name
        if target != service.name:
            # Another service's URL: it must be ready first (its readiness is awaited here).
            self._wait_for((target,))
        return http_ready(self.url(target) + probe.path, probe.judge)

    def _follow(self, running: Running) -> None:
        lines = running.logs()
        if lines is not None:
            self.harvester.add_stream_source(running.name, lines)

    def log_tail(self, name: str, lines: int = 40) -> str:
        """The last lines of a service's output, redacted."""
        running: Running | None = (
            self.state.database if name == DB_SERVICE else self.state.services.get(name)
        )
        if running is not None:
            own = running.log_tail(lines)
            if own is not None:
                return self.harvester.redact(own)
        try:
            return "\n".join(self.harvester.tail(name, lines))
        except KeyError:
            return f"(no log recorded for {name})"

    # -- while it runs ------------------------------------------------------------------------

    def exited_services(self) -> list[ServiceExit]:
        """Long-running services (and the database) that have exited since the start."""
        now = time.perf_counter() - self._started_at
        gone: list[ServiceExit] = []
        candidates: list[Running] = []
        if self.state.database is not None:
            candidates.append(self.state.database)
        jobs = {i for s in self.spec.services if s.is_job for i in s.instances()}
        candidates += [r for n, r in list(self.state.services.items()) if n not in jobs]
        for running in candidates:
            code = running.exit_code()
            if code is not None:
                gone.append(ServiceExit(running.name, code, now))
        return gone

    # -- teardown -------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop services in reverse dependency order, then the database; collect errors."""
        errors: list[str] = []
        started = time.perf_counter()
        for level in reversed(self.spec.start_levels()):
            group = [r for s in level for r in self.instances(s)]
            errors.extend(self._stop_group(group))
        self.state.services.clear()
        if self.state.database is not None:
            try:
                self.state.database.stop(timeout=SERVICE_STOP_TIMEOUT)
            except Exception as exc:
                errors.append(f"{DB_SERVICE}: {exc}")
            self.state.database = None
        try:
            self.provider.close()
        except Exception as exc:
            errors.append(f"provider: {exc}")
        errors.extend(f"log harvest: {e}" for e in self.harvester.stop(timeout=5))
        self._record("teardown", time.perf_counter() - started)
        if errors:
            raise TeardownErrors(errors)

    @staticmethod
    def _stop_group(services: list[RunningService]) -> list[str]:
        def stop_one(service: RunningService) -> str | None:
            try:
                service.stop(timeout=SERVICE_STOP_TIMEOUT)
            except Exception as exc:
                return f"{service.name}: {exc}"
            return None

        if not services:
            return []
        with ThreadPoolExecutor(max_workers=len(services)) as pool:
            return [e for e in pool.map(stop_one, services) if e]

    def facts(self) -> dict[str, Any]:
        """What ran, for stack.json (kept in memory: still complete after the teardown)."""
        urls = {
            name: facts.get("url") for name, facts in self.state.seen.items() if facts.get("url")
        }
        return {
            "run_id": self.spec.run_id,
            "app": self.spec.app,
            "provider": self.provider.name,
            "urls": urls,
            "database": self.state.database_facts,
            "services": dict(self.state.seen),
            "timings": dict(self.state.timings),
            **self.state.facts,
        }
