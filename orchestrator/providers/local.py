"""The local provider: embedded PostgreSQL and the app's services as subprocesses."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.contract import OWNER_ENV, RUN_ENV
from orchestrator.embedded_postgres import EmbeddedPostgres, resolve_bindir
from orchestrator.errors import PrerequisiteMissing
from orchestrator.ownership import Owner
from orchestrator.process_group import ProcessGroup
from orchestrator.providers.base import LogLines, RunningDatabase
from orchestrator.spec import ServiceSpec, StackSpec, rendered
from orchestrator.util import free_port

if TYPE_CHECKING:
    from orchestrator.config import OrchestratorConfig
    from orchestrator.profile import AppProfile

HOST = "127.0.0.1"


@dataclass
class LocalDatabase:
    server: EmbeddedPostgres
    host_url: str
    service_url: str
    name: str = "db"

    def exit_code(self) -> int | None:
        return self.server.exit_code()

    def logs(self) -> LogLines | None:
        return None  # the server writes its own log file; log_tail reads it

    def log_tail(self, lines: int) -> str | None:
        path = self.server.log_path
        if not path.exists():
            return None
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float) -> None:
        self.server.stop()

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "embedded",
            "bindir": str(self.server.bindir),
            "version": self.server.version(),
            "port": self.server.port,
            "data_dir": str(self.server.data_dir),
            "pid": self.server.pid,
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

    def __init__(self, pg_bindir: Path | None = None, pg_tmpdir: Path | None = None) -> None:
        self.pg_bindir = pg_bindir
        self.pg_tmpdir = pg_tmpdir
        self.owner = Owner.current()  # stamped on every process: `clean` checks it lives

    def prepare(self, spec: StackSpec, app: AppProfile) -> dict[str, Any]:
        bindir = resolve_bindir(self.pg_bindir)  # raises PrerequisiteMissing with the fix
        if self.pg_tmpdir is not None and not self.pg_tmpdir.is_dir():
            raise PrerequisiteMissing(
                f"the database folder {self.pg_tmpdir} (STACK_PG_TMPDIR) does not exist",
                "create it, or unset STACK_PG_TMPDIR to use the temp dir",
            )
        return {"python": sys.executable, "pg_bindir": str(bindir)}

    def start_database(self, spec: StackSpec) -> LocalDatabase:
        server = EmbeddedPostgres(
            bindir=self.pg_bindir,
            password=spec.database.password,
            run_id=spec.run_id,
            user=spec.database.user,
            base_dir=self.pg_tmpdir,
            settings={"max_connections": str(spec.database.max_connections)},
        )
        server.start()
        try:
            server.create_database(spec.database.name)
        except BaseException:
            server.stop()
            raise
        url = server.url(spec.database.name)
        return LocalDatabase(server=server, host_url=url, service_url=url)

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
        group = ProcessGroup(command, {**os.environ, **env, **owner})
        url = f"http://{HOST}:{port}" if port is not None else None
        return LocalProcess(instance, group, url)

    def close(self) -> None:
        """Nothing besides the services and the database (stopped by the Stack)."""


class LocalPlugin:
    name = "local"
    auto_rank = 20

    def available(self, config: OrchestratorConfig, app: AppProfile) -> tuple[bool, str]:
        return True, "the embedded stack runs anywhere Python does"

    def create(self, config: OrchestratorConfig) -> LocalProvider:
        return LocalProvider(pg_bindir=config.pg_bindir, pg_tmpdir=config.pg_tmpdir)


plugin = LocalPlugin()
