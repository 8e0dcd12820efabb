"""The local provider: embedded PostgreSQL and the backend/workers as subprocesses."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.embedded_postgres import EmbeddedPostgres
from orchestrator.log_harvest import LogHarvester
from orchestrator.providers.base import RunningDatabase
from orchestrator.spec import ProviderName, ServiceSpec, StackSpec
from orchestrator.util import free_port


@dataclass
class LocalDatabase:
    server: EmbeddedPostgres
    host_url: str
    service_url: str

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
    """A `python -m backend ...` subprocess in its own process group."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], url: str | None) -> None:
        self.name = name
        self.process = process
        self.url = url

    def exit_code(self) -> int | None:
        return self.process.poll()

    def stop(self, timeout: float) -> None:
        """SIGTERM to the group, wait, then SIGKILL the group."""
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        else:
            _signal_group(self.process.pid, signal.SIGKILL)  # stray children of a dead leader

    def describe(self) -> dict[str, Any]:
        return {"pid": self.process.pid, "command": self.process.args, "url": self.url}


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


class LocalProvider:
    name: ProviderName = "local"

    def __init__(self, harvester: LogHarvester, pg_bindir: Path | None = None) -> None:
        self.harvester = harvester
        self.pg_bindir = pg_bindir
        self._server: EmbeddedPostgres | None = None

    def prepare(self, spec: StackSpec) -> dict[str, Any]:
        from orchestrator.embedded_postgres import resolve_bindir

        bindir = resolve_bindir(self.pg_bindir)  # raises PrerequisiteMissing with the fix
        return {"python": sys.executable, "pg_bindir": str(bindir)}

    def start_database(self, spec: StackSpec) -> LocalDatabase:
        server = EmbeddedPostgres(
            bindir=self.pg_bindir, password=spec.database.password, run_id=spec.run_id
        )
        server.start()
        self._server = server
        server.create_database(spec.database.name)
        url = server.url(spec.database.name)
        return LocalDatabase(server=server, host_url=url, service_url=url)

    def start_service(
        self, spec: StackSpec, service: ServiceSpec, database: RunningDatabase
    ) -> LocalProcess:
        args = list(service.args)
        url = None
        if service.port is not None:
            port = free_port()
            args = _with_option(_with_option(args, "--host", "127.0.0.1"), "--port", str(port))
            url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            **service.env,
            "DATABASE_URL": database.service_url,
            "PYTHONUNBUFFERED": "1",
            "CI_STACK_RUN_ID": spec.run_id,  # lets `clean` find leftovers of a killed run
        }
        if service.role == "worker":
            args += ["--worker-id", f"{service.name}-{spec.run_id}"]
        process = subprocess.Popen(
            [sys.executable, "-m", "backend", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # own process group: stop() signals the whole group
        )
        assert process.stdout is not None
        self.harvester.add_stream_source(service.name, process.stdout)
        return LocalProcess(service.name, process, url)

    def log_tail(self, name: str, lines: int = 40) -> str:
        if name == "db" and self._server is not None:
            path = self._server.log_path
            if path.exists():
                return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(self.harvester.tail(name, lines))

    def close(self) -> None:
        self._server = None


def _with_option(args: list[str], option: str, value: str) -> list[str]:
    if option in args:
        index = args.index(option)
        return [*args[: index + 1], value, *args[index + 2 :]]
    return [*args, option, value]

