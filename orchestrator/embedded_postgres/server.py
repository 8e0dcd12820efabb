"""EmbeddedPostgres: one throwaway PostgreSQL server in a temp dir, from start() to stop()."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from time import perf_counter
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import psycopg
from psycopg import sql

from orchestrator.embedded_postgres.binaries import Install, reachable_install, resolve_bindir
from orchestrator.embedded_postgres.leftovers import (
    default_base_dir,
    release_shared_memory,
    temp_prefix,
    write_owner_file,
)
from orchestrator.embedded_postgres.processes import stop_postmaster
from orchestrator.embedded_postgres.ready import PostgresReady
from orchestrator.embedded_postgres.run_as import RunAs, run_as_kwargs, run_or_fail
from orchestrator.embedded_postgres.settings import HBA_TEMPLATE, SERVER_SETTINGS
from orchestrator.embedded_postgres.template import template_data_dir
from orchestrator.errors import OrchestratorError, StackStartError, TeardownErrors
from orchestrator.pgmq_extension import install_pgmq_extension
from orchestrator.util import free_port

HOST = "127.0.0.1"
_RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,40}")
_SOCKET_PATH_MAX = 107  # sun_path is 108 bytes including the trailing NUL
_BIND_ERRORS = ("could not bind", "Address already in use", "could not create any TCP/IP sockets")
_START_ATTEMPTS = 3  # free-port picking races other processes; retry on a bind failure


class EmbeddedPostgres:
    """One PostgreSQL server in a temp dir, PGMQ installable; nothing happens until start()."""

    def __init__(
        self,
        bindir: Path | None = None,
        password: str | None = None,
        run_id: str | None = None,
        user: str = "postgres",
        *,
        ready: PostgresReady | None = None,
        stop_timeout: float = 10.0,
        base_dir: Path | None = None,
        settings: Mapping[str, str] | None = None,
        source: Path | None = None,
        port: int | None = None,
    ) -> None:
        """`source`: a stopped data dir to start from (a snapshot) instead of the install's
        freshly initdb'ed one. `port`: listen there (else a free one is picked), so the URL
        is known before start()."""
        if run_id is not None and not _RUN_ID_PATTERN.fullmatch(run_id):
            raise ValueError(f"run_id {run_id!r} must match {_RUN_ID_PATTERN.pattern}")
        self._settings = {**SERVER_SETTINGS, **(settings or {})}
        self._base_dir = base_dir
        self._bindir_arg = bindir
        self._password = password
        self.run_id = run_id or secrets.token_hex(4)
        self.user = user
        self._ready = ready or PostgresReady()
        self._stop_timeout = stop_timeout
        self._install: Install | None = None
        self._run_as: RunAs | None = None
        self._tmp: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._source = source
        self._requested_port = port
        self._port: int | None = port
        self._started_seconds: float | None = None

    def __enter__(self) -> Self:
        return self.start()  # a failed start() has already cleaned up after itself

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"port={self._port}, pid={self.pid}" if self.alive() else "stopped"
        return f"<EmbeddedPostgres run_id={self.run_id!r} {state}>"

    # --- lifecycle ---

    def start(self) -> Self:
        """Create the data dir, start postgres and wait until it accepts connections."""
        if self._tmp is not None:
            raise OrchestratorError("EmbeddedPostgres.start() called twice; call stop() first")
        began = perf_counter()
        try:
            self._prepare_and_launch()
        except BaseException as exc:
            # A half-started server leaves nothing behind, and cleanup never hides the cause.
            try:
                self.stop()
            except OrchestratorError as cleanup_error:
                exc.add_note(f"cleanup after the failed start also failed: {cleanup_error}")
            raise
        self._started_seconds = perf_counter() - began
        return self

    def _prepare_and_launch(self) -> None:
        self._run_as = RunAs.for_current_process()
        install = Install.inspect(resolve_bindir(self._bindir_arg))
        self._install = install = reachable_install(install, self._run_as)
        install_pgmq_extension(install.extension_dir)

        base_dir = default_base_dir(self._base_dir)
        self._tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(self.run_id), dir=base_dir))
        if len(str(self._tmp)) + len("/.s.PGSQL.65535") > _SOCKET_PATH_MAX:
            raise OrchestratorError(
                f"temp dir {self._tmp} is too long for a unix socket path; "
                "set pg-tmpdir (STACK_PG_TMPDIR) to a shorter directory"
            )
        write_owner_file(self._tmp, self.run_id)
        if self._run_as is not None:
            os.chown(self._tmp, self._run_as.uid, self._run_as.gid)
        self._create_data_dir()
        self._launch()
        self._set_password()

    def use_source(self, data_dir: Path) -> None:
        """Start from the stopped data dir `data_dir` (e.g. a snapshot); before start() only."""
        if self._tmp is not None:
            raise OrchestratorError("EmbeddedPostgres.use_source() after start(); stop() first")
        self._source = data_dir

    def save_data_dir(self, dest: Path) -> None:
        """Stop the server cleanly and copy its data dir to `dest` (e.g. for a snapshot)."""
        if self._proc is None:
            raise self._not_started("save_data_dir")
        stop_postmaster(self._proc, self.data_dir, self._stop_timeout)
        self._proc = None
        if self._run_as is not None:
            os.chown(dest.parent, self._run_as.uid, self._run_as.gid)
        copy = ["cp", "-R", "--preserve=mode", str(self.data_dir), str(dest)]
        run_or_fail("copying the data dir", copy, **self._subprocess_kwargs())
        for name in ("postmaster.opts", "pg_hba.conf"):  # this server's; each run writes its own
            (dest / name).unlink(missing_ok=True)

    def stop(self) -> None:
        """Fast shutdown (bounded wait, then SIGKILL), then remove the temp dir. Idempotent."""
        errors: list[str] = []
        if self._proc is not None:
            try:
                stop_postmaster(self._proc, self.data_dir, self._stop_timeout)
            except (OSError, subprocess.TimeoutExpired) as exc:
                errors.append(f"stopping postgres pid {self._proc.pid}: {exc}")
            self._proc = None
        if self._tmp is not None:
            release_shared_memory(self._tmp / "data")  # only left after an unclean exit
            try:
                shutil.rmtree(self._tmp)
            except FileNotFoundError:
                pass  # already cleaned, e.g. by clean_leftovers()
            except OSError as exc:
                errors.append(f"removing {self._tmp}: {exc}")
            self._tmp = None
        self._port = self._requested_port
        if errors:
            raise TeardownErrors(errors)

    def alive(self) -> bool:
        """True while the postmaster process runs."""
        return self._proc is not None and self._proc.poll() is None

    def exit_code(self) -> int | None:
        """None while the postmaster runs (or before start); its exit code once it ended."""
        return None if self._proc is None else self._proc.poll()

    # --- where it is ---

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        if self._port is None:
            raise self._not_started("port")
        return self._port

    @property
    def socket_dir(self) -> Path:
        if self._tmp is None:
            raise self._not_started("socket_dir")
        return self._tmp

    @property
    def data_dir(self) -> Path:
        return self.socket_dir / "data"

    @property
    def log_path(self) -> Path:
        return self.socket_dir / "postgres.log"

    @property
    def bindir(self) -> Path:
        """The bin dir in use (after start, possibly the world-readable cached copy)."""
        return self._install.bindir if self._install else resolve_bindir(self._bindir_arg)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def password(self) -> str | None:
        return self._password

    @property
    def started_seconds(self) -> float:
        """Seconds from the start() call until the server accepted connections."""
        if self._started_seconds is None:
            raise self._not_started("started_seconds")
        return self._started_seconds

    def url(self, dbname: str = "postgres") -> str:
        """postgresql:// URL over TCP, with the password when one is set."""
        auth = quote(self.user, safe="")
        if self._password is not None:
            auth += ":" + quote(self._password, safe="")
        return f"postgresql://{auth}@{HOST}:{self.port}/{quote(dbname, safe='')}"

    def version(self) -> str:
        """Server version of the binaries, e.g. "16.2"."""
        install = self._install or Install.inspect(self.bindir)
        return install.version

    # --- databases ---

    def connect(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        """Superuser connection over the unix socket (trusted), autocommit."""
        return psycopg.connect(**self._socket_conninfo(dbname), autocommit=True)

    def create_database(self, name: str, template: str | None = None) -> str:
        """CREATE DATABASE `name` (optionally from `template`); return its URL."""
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        with self.connect() as conn:
            conn.execute(query)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop `name` if it exists, terminating its connections first."""
        with self.connect() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    # --- internals ---

    def _not_started(self, what: str) -> OrchestratorError:
        return OrchestratorError(
            f"EmbeddedPostgres.{what} is only known after start(); "
            "call start() or use the server as a context manager"
        )

    def _socket_conninfo(self, dbname: str = "postgres") -> dict[str, Any]:
        return {
            "host": str(self.socket_dir),
            "port": self.port,
            "user": self.user,
            "dbname": dbname,
        }

    def _subprocess_kwargs(self) -> dict[str, Any]:
        return run_as_kwargs(self._run_as, self.socket_dir)

    def _create_data_dir(self) -> None:
        """Copy the install's template data dir (initdb'ed once) and set this server's auth."""
        assert self._install is not None
        template = self._source or template_data_dir(self._install, self._run_as, self.user)
        copy = ["cp", "-R", "--preserve=mode", str(template), str(self.data_dir)]
        run_or_fail("copying the template data dir", copy, **self._subprocess_kwargs())
        method = "trust" if self._password is None else "scram-sha-256"
        (self.data_dir / "pg_hba.conf").write_text(HBA_TEMPLATE.format(method=method))

    def _set_password(self) -> None:
        if self._password is not None:
            query = sql.SQL("ALTER ROLE {} PASSWORD {}")
            with self.connect() as conn:
                conn.execute(query.format(sql.Identifier(self.user), sql.Literal(self._password)))

    def _launch(self) -> None:
        assert self._install is not None
        attempts = 1 if self._requested_port is not None else _START_ATTEMPTS
        for attempt in range(1, attempts + 1):
            self._port = self._requested_port or free_port()
            settings = {
                "port": str(self._port),
                "listen_addresses": HOST,
                "unix_socket_directories": str(self.socket_dir),
                **self._settings,
            }
            args = [str(self._install.bindir / "postgres"), "-D", str(self.data_dir)]
            args += [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
            with self.log_path.open("wb") as log:
                # Own session: its process group is ours to kill, signals to us don't reach it.
                self._proc = subprocess.Popen(
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    **self._subprocess_kwargs(),
                )
            try:
                self._ready.wait(self._proc, self._socket_conninfo(), self.log_path)
                return
            except StackStartError as exc:
                bind_failed = any(marker in exc.log_tail for marker in _BIND_ERRORS)
                if exc.exit_code is None or not bind_failed or attempt == attempts:
                    raise
