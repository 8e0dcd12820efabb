"""The local provider: embedded PostgreSQL and the app's services as subprocesses.

The database starts in the background (`start_database` returns at once with its URLs, so
the services import meanwhile). When the spec names a schema, the data dir is copied from a
snapshot in which the schema jobs already ran (built on first use, see
`embedded_postgres.snapshot`), and the stack skips those jobs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.contract import OWNER_ENV, RUN_ENV
from orchestrator.embedded_postgres import EmbeddedPostgres, resolve_bindir
from orchestrator.embedded_postgres.install import Install
from orchestrator.embedded_postgres.run_as import RunAs
from orchestrator.embedded_postgres.snapshot import SnapshotStore
from orchestrator.errors import PrerequisiteMissing, StackStartError
from orchestrator.images.paths import default_cache_dir
from orchestrator.ownership import Owner
from orchestrator.pgmq_extension import install_pgmq_extension
from orchestrator.process_group import ProcessGroup
from orchestrator.providers.base import LogLines, RunningDatabase
from orchestrator.spec import DatabaseSchema, ServiceSpec, StackSpec, rendered
from orchestrator.util import free_port

if TYPE_CHECKING:
    from orchestrator.config import OrchestratorConfig

HOST = "127.0.0.1"
JOB_LOG_LINES = 40  # of a schema job's output, in the error when it fails


@dataclass
class LocalDatabase:
    """The embedded server, starting in the background until `starting` is done."""

    server: EmbeddedPostgres
    host_url: str
    service_url: str
    starting: Future[None] = field(default_factory=Future)
    schema_ready: bool = False  # started from a snapshot: the schema jobs already ran
    facts: dict[str, Any] = field(default_factory=dict)
    name: str = "db"

    def exit_code(self) -> int | None:
        if not self.starting.done():
            return None
        if self.starting.exception() is not None:
            return 1  # the start failed (and cleaned up after itself); log_tail says why
        return self.server.exit_code()

    def logs(self) -> LogLines | None:
        return None  # the server writes its own log file; log_tail reads it

    def log_tail(self, lines: int) -> str | None:
        if self.starting.done() and self.starting.exception() is not None:
            return str(self.starting.exception())
        try:
            text = self.server.log_path.read_text(errors="replace")
        except Exception:  # not started yet, or already removed
            return None
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float) -> None:
        # Never stop a server half-way through its start; a failed start was reported by the
        # stack and has cleaned up after itself.
        with contextlib.suppress(Exception):
            self.starting.result(timeout=timeout)
        self.server.stop()

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "embedded",
            "bindir": str(self.server.bindir),
            "version": self.server.version(),
            "port": self.server.port,
            "data_dir": str(self.server.data_dir),
            "pid": self.server.pid,
            **self.facts,
        }


class LocalProcess:
    """One service instance: a subprocess leading its own process group."""

    def __init__(self, name: str, group: ProcessGroup, url: str | None) -> None:
        self.name = name
        self.group = group
        self.url = url

    def exit_code(self) -> int | None:
        return self.group.exit_code()

    def logs(self) -> LogLines | None:
        return self.group.stdout

    def log_tail(self, lines: int) -> str | None:
        return None

    def stop(self, timeout: float) -> None:
        self.group.stop(timeout)

    def describe(self) -> dict[str, Any]:
        return {"pid": self.group.pid, "command": self.group.argv, "url": self.url}


class LocalProvider:
    name = "local"

    def __init__(
        self,
        pg_bindir: Path | None = None,
        pg_tmpdir: Path | None = None,
        snapshot_root: Path | None = None,  # default: the user's store under /var/tmp
    ) -> None:
        self.pg_bindir = pg_bindir
        self.pg_tmpdir = pg_tmpdir
        self.snapshot_root = snapshot_root
        self.owner = Owner.current()  # stamped on every process: `clean` checks it lives

    def prepare(self, spec: StackSpec) -> dict[str, Any]:
        bindir = resolve_bindir(self.pg_bindir)  # raises PrerequisiteMissing with the fix
        if self.pg_tmpdir is not None and not self.pg_tmpdir.is_dir():
            raise PrerequisiteMissing(
                f"the database folder {self.pg_tmpdir} (STACK_PG_TMPDIR) does not exist",
                "create it, or unset STACK_PG_TMPDIR to use the temp dir",
            )
        return {"python": sys.executable, "pg_bindir": str(bindir)}

    def start_database(self, spec: StackSpec) -> LocalDatabase:
        """Launch the server in the background and return at once with its URLs.

        With a schema in the spec, the data dir comes from its snapshot, built here first
        when missing. A snapshot that cannot be built is not used: the schema jobs then run
        in the stack as usual, which reports their failure with their logs.
        """
        facts: dict[str, Any] = {}
        snapshot = self._snapshot(spec, facts)
        server = self._server(spec, password=spec.database.password, port=free_port())
        url = server.url(spec.database.name)
        database = LocalDatabase(server, url, url, schema_ready=snapshot is not None, facts=facts)

        def start() -> None:
            try:
                if snapshot is None:
                    server.start()
                    server.create_database(spec.database.name)
                else:
                    store, name = snapshot
                    with store.reading(name) as data_dir:
                        server.use_source(data_dir)
                        server.start()  # copies the snapshot first
            except BaseException as exc:
                try:
                    server.stop()  # a failed start() has; a failed CREATE DATABASE has not
                except Exception as cleanup:
                    exc.add_note(f"stopping the server after the failed start: {cleanup}")
                database.starting.set_exception(exc)
            else:
                database.starting.set_result(None)

        threading.Thread(target=start, name=f"{spec.run_id}-db-start", daemon=True).start()
        return database

    def _snapshot(self, spec: StackSpec, facts: dict[str, Any]) -> tuple[SnapshotStore, str] | None:
        """(store, name) of the spec's complete schema snapshot, or None to start fresh."""
        schema = spec.database.schema
        if schema is None:
            return None
        store, facts["snapshot_store"] = SnapshotStore.open(
            RunAs.for_current_process(), self.snapshot_root
        )
        if store is None:
            return None
        name = self._snapshot_name(spec, schema)
        try:
            built = store.ensure(name, lambda dest: self._build_snapshot(spec, dest))
        except StackStartError as exc:
            facts["snapshot"] = f"{name}: not built ({exc.service}: {exc.last_answer})"
            return None
        facts["snapshot"] = f"{name}: {'built now' if built else 'reused'}"
        return store, name

    def _server(self, spec: StackSpec, password: str | None, port: int | None) -> EmbeddedPostgres:
        return EmbeddedPostgres(
            bindir=self.pg_bindir,
            password=password,
            run_id=spec.run_id,
            user=spec.database.user,
            base_dir=self.pg_tmpdir,
            settings={"max_connections": str(spec.database.max_connections)},
            port=port,
        )

    def _snapshot_name(self, spec: StackSpec, schema: DatabaseSchema) -> str:
        """Everything that decides the snapshot's content, hashed into its name."""
        install = Install.inspect(resolve_bindir(self.pg_bindir))
        install_pgmq_extension(install.extension_dir)
        postgres = install.bindir / "postgres"
        extension_files = sorted(install.extension_dir.glob("*.control"))
        jobs = [spec.service(job) for job in schema.jobs]
        identity = {
            "postgres": [install.version, str(postgres.resolve()), postgres.stat().st_size],
            "extensions": {
                name: hashlib.sha256(path.read_bytes()).hexdigest()
                for path in extension_files
                if (name := path.stem) in spec.database.extensions
            },
            "database": [spec.database.user, spec.database.name],
            "schema": schema.key,
            "jobs": [[job.command, sorted(job.env.items())] for job in jobs],
        }
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
        return f"{spec.app}-{install.version}-{digest[:16]}"

    def _build_snapshot(self, spec: StackSpec, dest: Path) -> None:
        """A fresh server, the schema jobs run against it, its data dir saved to `dest`.

        It has a password of its own (TCP is never trusted: another local user could change
        what later runs clone); each run's server sets the run's password."""
        assert spec.database.schema is not None
        server = self._server(spec, password=secrets.token_urlsafe(18), port=None)
        with server:
            server.create_database(spec.database.name)
            for job in spec.database.schema.jobs:
                self._run_job(spec, spec.service(job), server.url(spec.database.name))
            server.save_data_dir(dest)

    def _run_job(self, spec: StackSpec, job: ServiceSpec, database_url: str) -> None:
        values = {
            "python": sys.executable,
            "host": HOST,
            "port": "",
            "instance": job.name,
            "run_id": spec.run_id,
            "database_url": database_url,
        }
        command, env = rendered(job, values)
        owner = {RUN_ENV: spec.run_id, OWNER_ENV: self.owner.encode()}
        with tempfile.TemporaryDirectory(prefix=f"ci-stack-{spec.run_id}-job-") as folder:
            output = Path(folder) / "output.log"
            group = ProcessGroup(command, service_environment({**env, **owner}), output=output)
            try:
                code: int | None = group.wait(timeout=spec.timeout)
            except subprocess.TimeoutExpired:
                code = None
            finally:
                group.stop(timeout=5)
            if code != 0:
                tail = output.read_text(errors="replace").splitlines()[-JOB_LOG_LINES:]
                raise StackStartError(
                    job.name,
                    f"{job.probe.description} (building the schema snapshot)",
                    "timed out" if code is None else f"exit code {code}",
                    "\n".join(tail),
                    code,
                )

    def start_service(
        self, spec: StackSpec, service: ServiceSpec, instance: str, database: RunningDatabase
    ) -> LocalProcess:
        port = free_port() if service.port is not None else None
        values = {
            "python": sys.executable,
            "host": HOST,
            "port": str(port or ""),
            "instance": instance,
            "run_id": spec.run_id,
            "database_url": database.service_url,
        }
        command, env = rendered(service, values)
        owner = {RUN_ENV: spec.run_id, OWNER_ENV: self.owner.encode()}
        group = ProcessGroup(command, service_environment({**env, **owner}))
        url = f"http://{HOST}:{port}" if port is not None else None
        return LocalProcess(instance, group, url)

    def close(self) -> None:
        """Nothing besides the services and the database (stopped by the Stack)."""


def service_environment(extra: dict[str, str]) -> dict[str, str]:
    """Our environment plus `extra`, with a bytecode cache for Python services.

    With PYTHONDONTWRITEBYTECODE set (common in CI images) every service process compiles
    every module it imports from source, on every run: that doubles a Python service's
    start-up. Such services write their bytecode under the user's cache dir instead
    (PYTHONPYCACHEPREFIX: never next to the sources, which is what the setting protects).
    """
    env = {**os.environ, **extra}
    if env.get("PYTHONDONTWRITEBYTECODE") and not env.get("PYTHONPYCACHEPREFIX"):
        env.pop("PYTHONDONTWRITEBYTECODE")
        env["PYTHONPYCACHEPREFIX"] = str(default_cache_dir() / "pycache")
    return env


class LocalPlugin:
    name = "local"
    auto_rank = 20
    runs_images = False  # services run from this interpreter's environment

    def available(self, config: OrchestratorConfig) -> tuple[bool, str]:
        return True, "the embedded stack runs anywhere Python does"

    def create(self, config: OrchestratorConfig) -> LocalProvider:
        return LocalProvider(pg_bindir=config.pg_bindir, pg_tmpdir=config.pg_tmpdir)


plugin = LocalPlugin()
