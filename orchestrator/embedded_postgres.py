"""A throwaway PostgreSQL server with PGMQ, run from local binaries (no Docker).

Binaries come from, in order: the `bindir` argument, `STACK_PG_BINDIR`, the `pgserver`
wheel. Each server lives in a temp dir named `ci-stack-<run id>-pg-*` (data dir, unix
socket, log) under /dev/shm when it is roomy, else the temp dir; `stop()` removes it and
`clean_leftovers()` removes what a killed run left.

As root, initdb and postgres are run as the `postgres` system user (else `nobody`). When
that user cannot reach the install (say, a venv inside a 0700 dir), the install is copied
once into a world-readable cache under /var/tmp and run from there.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import hashlib
import json
import os
import pwd
import re
import secrets
import select
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from time import perf_counter
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import psycopg
from psycopg import sql

from orchestrator.errors import (
    OrchestratorError,
    PrerequisiteMissing,
    StackStartError,
    TeardownErrors,
)
from orchestrator.pgmq_extension import install_pgmq_extension

BINDIR_ENV = "STACK_PG_BINDIR"
BASE_DIR_ENV = "STACK_PG_TMPDIR"
TMPFS_DIR = Path("/dev/shm")
_TMPFS_MIN_FREE = 1 << 30  # only use /dev/shm when it is roomy (Docker's default is 64 MB)
TEMP_PREFIX = "ci-stack-"
INSTALL_CACHE_ROOT = Path("/var/tmp")
HOST = "127.0.0.1"
OWNER_FILE = "ci-stack-owner.json"
BINARIES_FIX = (
    "pip install pgserver==0.1.4, or pass --pg-bindir / set STACK_PG_BINDIR "
    "to a PostgreSQL bin directory"
)

# Settings for a disposable test database: durability off, room for many pools.
SERVER_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "jit": "off",
    "huge_pages": "off",
    # Dynamic shared memory as files in the data dir: a killed server leaks none of it.
    "dynamic_shared_memory_type": "mmap",
}
_INITDB_OPTIONS = ("-E", "UTF8", "--locale=C", "-N", "--auth=trust")
_HBA_TEMPLATE = """\
# Written by orchestrator.embedded_postgres: the unix socket is trusted, TCP uses {method}.
local all all trust
host all all 127.0.0.1/32 {method}
host all all ::1/128 {method}
"""
_RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,40}")
_IPC_RMID = 0
_SOCKET_PATH_MAX = 107  # sun_path is 108 bytes including the trailing NUL
_BIND_ERRORS = ("could not bind", "Address already in use", "could not create any TCP/IP sockets")
_START_ATTEMPTS = 3  # free-port picking races other processes; retry on a bind failure


def temp_prefix(run_id: str) -> str:
    """Name prefix of the temp dirs of run `run_id`."""
    return f"{TEMP_PREFIX}{run_id}-pg-"


def default_base_dir() -> Path:
    """Where server temp dirs go: $STACK_PG_TMPDIR, else a roomy /dev/shm, else the temp dir.

    A data dir in RAM starts several times faster than on a slow VM disk (initdb writes
    ~40 MB), and a throwaway database loses nothing by living there.
    """
    if os.environ.get(BASE_DIR_ENV):
        return Path(os.environ[BASE_DIR_ENV])
    if _roomy_dir(TMPFS_DIR):
        return TMPFS_DIR
    return Path(tempfile.gettempdir())


def _roomy_dir(path: Path) -> bool:
    try:
        stats = os.statvfs(path)
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK) and stats.f_bavail * stats.f_frsize >= _TMPFS_MIN_FREE


def _temp_roots() -> list[Path]:
    """Every place a server temp dir may be, for leftover hunting."""
    roots = [default_base_dir(), TMPFS_DIR, Path(tempfile.gettempdir())]
    return [root for index, root in enumerate(roots) if root.is_dir() and root not in roots[:index]]


# --- finding the binaries -----------------------------------------------------------------


def resolve_bindir(bindir: Path | None = None) -> Path:
    """The PostgreSQL bin dir to use: `bindir`, else $STACK_PG_BINDIR, else pgserver's."""
    if bindir is not None:
        candidate, source = bindir, "bindir argument"
    elif os.environ.get(BINDIR_ENV):
        candidate, source = Path(os.environ[BINDIR_ENV]), f"${BINDIR_ENV}"
    else:
        spec = find_spec("pgserver")  # finds without importing it
        if spec is None or not spec.submodule_search_locations:
            raise PrerequisiteMissing(
                "PostgreSQL binaries not found (searched: pgserver wheel: not installed)",
                BINARIES_FIX,
            )
        candidate = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        source = "pgserver wheel"
    missing = [n for n in ("initdb", "postgres", "pg_config") if not _is_executable(candidate / n)]
    if missing:
        raise PrerequisiteMissing(
            f"PostgreSQL binaries not found (searched: {source}: {candidate}, "
            f"missing {', '.join(missing)})",
            BINARIES_FIX,
        )
    return candidate


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


@dataclass(frozen=True)
class _Install:
    """What pg_config says about the install in `bindir`."""

    bindir: Path
    sharedir: Path
    pkglibdir: Path
    version: str  # e.g. "16.2"

    @classmethod
    def inspect(cls, bindir: Path) -> _Install:
        out = _run_checked([str(bindir / "pg_config"), "--sharedir", "--pkglibdir", "--version"])
        sharedir, pkglibdir, version_line = out.splitlines()[:3]
        # "PostgreSQL 16.2", or "PostgreSQL 15.18 (Debian 15.18-0+deb12u1)"
        match = re.match(r"PostgreSQL (\d+(?:\.\d+)*)", version_line)
        version = match.group(1) if match else version_line.split()[-1]
        return cls(bindir, Path(sharedir), Path(pkglibdir), version)

    @property
    def extension_dir(self) -> Path:
        return self.sharedir / "extension"

    @property
    def root(self) -> Path:
        return self.bindir.parent

    def is_self_contained(self) -> bool:
        """True when bin, share and lib all sit under one root (pgserver's layout)."""
        root = self.root.resolve()
        return all(p.resolve().is_relative_to(root) for p in (self.sharedir, self.pkglibdir))


# --- who runs the server -------------------------------------------------------------------


@dataclass(frozen=True)
class _RunAs:
    """The unprivileged OS user initdb and postgres run as when we are root."""

    name: str
    uid: int
    gid: int

    @classmethod
    def for_current_process(cls) -> _RunAs | None:
        if os.geteuid() != 0:
            return None  # run as ourselves
        for name in ("postgres", "nobody"):
            with contextlib.suppress(KeyError):
                entry = pwd.getpwnam(name)
                return cls(name, entry.pw_uid, entry.pw_gid)
        raise PrerequisiteMissing(
            "running as root, but neither a 'postgres' nor a 'nobody' user exists "
            "(initdb and postgres refuse to run as root)",
            "create a system user: useradd --system postgres, or run as a non-root user",
        )

    def popen_kwargs(self) -> dict[str, Any]:
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def can_use(self, install: _Install) -> bool:
        """Ask the OS, as this user: can it read share/lib and run postgres (libs included)?"""
        check = 'test -r "$2" && test -x "$2" && test -r "$3" && test -x "$3" && "$1" --version'
        paths = [install.bindir / "postgres", install.extension_dir, install.pkglibdir]
        result = subprocess.run(
            ["/bin/sh", "-c", check, "sh", *map(str, paths)],
            cwd="/",
            capture_output=True,
            check=False,
            **self.popen_kwargs(),
        )
        return result.returncode == 0


def _reachable_install(install: _Install, run_as: _RunAs | None) -> _Install:
    """`install`, or a world-readable cached copy of it when `run_as` cannot reach it."""
    if run_as is None or run_as.can_use(install):
        return install
    if not install.is_self_contained():
        raise PrerequisiteMissing(
            f"user {run_as.name!r} cannot reach the PostgreSQL install at {install.root}, "
            "and it is not self-contained, so it cannot be copied",
            f"make {install.bindir} readable for {run_as.name!r}, or use the pgserver binaries",
        )
    copy = _Install.inspect(_cached_copy(install) / "bin")
    if not run_as.can_use(copy):
        raise OrchestratorError(f"user {run_as.name!r} cannot use the cached install {copy.root}")
    return copy


def _cached_copy(install: _Install) -> Path:
    """Copy the install once into /var/tmp, world-readable; return the copy's root.

    A wheel's binaries find their bundled libraries through an rpath like
    `$ORIGIN/../../../pgserver.libs`, so the copy keeps the layout `<pkg>/<root>` plus the
    `<pkg>.libs` sibling that auditwheel made.
    """
    root = install.root.resolve()
    package = root.parent
    libs = package.parent / f"{package.name}.libs"
    digest = hashlib.sha256(install.version.encode())
    digest.update((install.bindir / "postgres").read_bytes())  # content, not location
    name = f"{TEMP_PREFIX}pginstall-{install.version}-{digest.hexdigest()[:12]}"
    final = INSTALL_CACHE_ROOT / name
    copied_root = final / package.name / root.name
    if (copied_root / "bin" / "postgres").is_file():
        return copied_root
    staging = Path(tempfile.mkdtemp(dir=INSTALL_CACHE_ROOT, prefix=f".{name}-"))
    try:
        shutil.copytree(root, staging / package.name / root.name, symlinks=True)
        if libs.is_dir():
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        _make_world_readable(staging)  # our own fresh copy: nothing pre-existing is loosened
        try:
            os.rename(staging, final)  # atomic; a concurrent winner makes this fail
        except OSError:
            if not (copied_root / "bin" / "postgres").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return copied_root


def _make_world_readable(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            path = Path(dirpath, name)
            if path.is_symlink():
                continue
            mode = stat.S_IMODE(path.stat().st_mode)
            path.chmod(mode | 0o444 | (0o111 if mode & stat.S_IXUSR else 0))


# --- the data directory ------------------------------------------------------------------


def _run_as_kwargs(run_as: _RunAs | None, cwd: Path) -> dict[str, Any]:
    """subprocess arguments to run a PostgreSQL program as `run_as`, without our PG* env."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    kwargs: dict[str, Any] = {"env": env, "cwd": str(cwd)}
    if run_as is not None:
        kwargs.update(run_as.popen_kwargs())
    return kwargs


def _run_or_fail(what: str, args: list[str], **kwargs: Any) -> None:
    result = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        output = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
        raise OrchestratorError(f"{what} failed with code {result.returncode}:\n{output}")


def _template_data_dir(install: _Install, run_as: _RunAs | None, user: str) -> Path:
    """A data dir initdb'ed once per install, superuser and OS user, under /var/tmp.

    Servers start from a copy: copying is several times cheaper than initdb, which runs a
    bootstrap backend. Auth is set per server (pg_hba.conf, ALTER ROLE ... PASSWORD).
    """
    postgres = install.bindir / "postgres"
    binary = postgres.stat()
    uid = run_as.uid if run_as is not None else os.geteuid()
    identity = [
        install.version,
        str(postgres.resolve()),
        str(binary.st_size),
        str(binary.st_mtime_ns),
        user,
        str(uid),
        *_INITDB_OPTIONS,
    ]
    digest = hashlib.sha256("|".join(identity).encode()).hexdigest()[:12]
    name = f"{TEMP_PREFIX}pgdata-{install.version}-{digest}"
    final = INSTALL_CACHE_ROOT / name
    if (final / "PG_VERSION").is_file():
        return final
    staging = Path(tempfile.mkdtemp(dir=INSTALL_CACHE_ROOT, prefix=f".{name}-"))
    try:
        if run_as is not None:
            os.chown(staging, run_as.uid, run_as.gid)
        initdb = [str(install.bindir / "initdb"), "-D", str(staging), "-U", user, *_INITDB_OPTIONS]
        _run_or_fail("initdb", initdb, **_run_as_kwargs(run_as, staging))
        try:
            os.rename(staging, final)  # atomic; a concurrent winner makes this fail
        except OSError:
            if not (final / "PG_VERSION").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


# --- readiness -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PostgresReady:
    """Wait until the server accepts a real connection, failing at once if it exits."""

    timeout: float = 30.0
    interval: float = 0.02

    def wait(self, proc: subprocess.Popen[bytes], conninfo: dict[str, Any], log: Path) -> None:
        awaited = f"a connection on {conninfo['host']} port {conninfo['port']}"
        deadline = perf_counter() + self.timeout
        last_answer = "no attempt yet"
        while True:
            code = proc.poll()
            if code is not None:
                raise StackStartError("postgres", awaited, last_answer, _log_tail(log), code)
            try:
                with psycopg.connect(**conninfo, connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                last_answer = str(exc).strip()
            if perf_counter() >= deadline:
                last_answer += (
                    f" (after {self.timeout:.0f}s; a slow disk or a full /dev/shm delays start-up)"
                )
                raise StackStartError("postgres", awaited, last_answer, _log_tail(log))
            # Pause by waiting on the process itself, so an exit is seen at once.
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=self.interval)


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(log unreadable: {exc})"
    return "\n".join(text.splitlines()[-lines:])


# --- the server ----------------------------------------------------------------------------


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
    ) -> None:
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
        self._install: _Install | None = None
        self._run_as: _RunAs | None = None
        self._tmp: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
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
        self._run_as = _RunAs.for_current_process()
        install = _Install.inspect(resolve_bindir(self._bindir_arg))
        self._install = install = _reachable_install(install, self._run_as)
        install_pgmq_extension(install.extension_dir)

        base_dir = self._base_dir or default_base_dir()
        self._tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(self.run_id), dir=base_dir))
        if len(str(self._tmp)) + len("/.s.PGSQL.65535") > _SOCKET_PATH_MAX:
            raise OrchestratorError(
                f"temp dir {self._tmp} is too long for a unix socket path; "
                f"set {BASE_DIR_ENV} to a shorter directory"
            )
        _write_owner_file(self._tmp, self.run_id)
        if self._run_as is not None:
            os.chown(self._tmp, self._run_as.uid, self._run_as.gid)
        self._create_data_dir()
        self._launch()
        self._set_password()

    def stop(self) -> None:
        """Fast shutdown (bounded wait, then SIGKILL), then remove the temp dir. Idempotent."""
        errors: list[str] = []
        if self._proc is not None:
            try:
                _stop_postmaster(self._proc, self.data_dir, self._stop_timeout)
            except (OSError, subprocess.TimeoutExpired) as exc:
                errors.append(f"stopping postgres pid {self._proc.pid}: {exc}")
            self._proc = None
        if self._tmp is not None:
            _release_shared_memory(self._tmp / "data")  # only left after an unclean exit
            try:
                shutil.rmtree(self._tmp)
            except FileNotFoundError:
                pass  # already cleaned, e.g. by clean_leftovers()
            except OSError as exc:
                errors.append(f"removing {self._tmp}: {exc}")
            self._tmp = None
        self._port = None
        if errors:
            raise TeardownErrors(errors)

    def alive(self) -> bool:
        """True while the postmaster process runs."""
        return self._proc is not None and self._proc.poll() is None

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
        install = self._install or _Install.inspect(self.bindir)
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
        return _run_as_kwargs(self._run_as, self.socket_dir)

    def _create_data_dir(self) -> None:
        """Copy the install's template data dir (initdb'ed once) and set this server's auth."""
        assert self._install is not None
        template = _template_data_dir(self._install, self._run_as, self.user)
        copy = ["cp", "-R", "--preserve=mode", str(template), str(self.data_dir)]
        _run_or_fail("copying the template data dir", copy, **self._subprocess_kwargs())
        method = "trust" if self._password is None else "scram-sha-256"
        (self.data_dir / "pg_hba.conf").write_text(_HBA_TEMPLATE.format(method=method))

    def _set_password(self) -> None:
        if self._password is not None:
            query = sql.SQL("ALTER ROLE {} PASSWORD {}")
            with self.connect() as conn:
                conn.execute(query.format(sql.Identifier(self.user), sql.Literal(self._password)))

    def _launch(self) -> None:
        assert self._install is not None
        for attempt in range(1, _START_ATTEMPTS + 1):
            self._port = _free_port()
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
                if exc.exit_code is None or not bind_failed or attempt == _START_ATTEMPTS:
                    raise


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _run_checked(args: list[str]) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise PrerequisiteMissing(
            f"{args[0]} failed ({exc})",
            "point --pg-bindir / STACK_PG_BINDIR at a complete "
            "PostgreSQL bin directory, or pip install pgserver==0.1.4",
        ) from exc


# --- processes -----------------------------------------------------------------------------


def _stop_postmaster(proc: subprocess.Popen[bytes], data_dir: Path, timeout: float) -> None:
    """SIGINT (fast shutdown), wait up to `timeout`, then SIGKILL every process of the server."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_server(data_dir, timeout)
            proc.wait(timeout=timeout)
    # A postmaster killed by someone else leaves its children running for a moment.
    _kill_server(data_dir, timeout)


@dataclass(frozen=True)
class _ProcInfo:
    pid: int
    comm: str
    state: str  # "Z" for a zombie
    start_ticks: int


def _proc_info(pid: int) -> _ProcInfo | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # "pid (comm) state ppid ..." - comm may hold spaces and parentheses.
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    return _ProcInfo(pid, comm, fields[0], int(fields[19]))


def _server_processes(data_dir: Path) -> list[int]:
    """Live postgres processes of the server on `data_dir`.

    The postmaster chdirs into its data dir and its children inherit that, while each child
    becomes a session leader of its own: the working directory, not the process group, is
    what ties them together. A pid reused by anything else has another name or directory.
    """
    target = os.path.realpath(data_dir)
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        info = _proc_info(int(entry.name))
        if info is None or info.comm != "postgres" or info.state == "Z":
            continue
        with contextlib.suppress(OSError):
            if os.readlink(entry / "cwd") == target:
                pids.append(info.pid)
    return pids


def _kill_server(data_dir: Path, timeout: float) -> list[int]:
    """SIGKILL every process of the server on `data_dir`; wait until they are gone."""
    pids = _server_processes(data_dir)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _wait_gone(pids, timeout)
    return pids


def _wait_gone(pids: list[int], timeout: float) -> None:
    deadline = perf_counter() + timeout
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            # A pidfd turns readable when the process exits.
            select.select([fd], [], [], max(0.0, deadline - perf_counter()))
        finally:
            os.close(fd)


# --- leftovers of killed runs ----------------------------------------------------------------


def _write_owner_file(tmp: Path, run_id: str) -> None:
    me = _proc_info(os.getpid())
    owner = {"run_id": run_id, "pid": os.getpid(), "start_ticks": me.start_ticks if me else None}
    (tmp / OWNER_FILE).write_text(json.dumps(owner))


def _owner_alive(tmp: Path) -> bool:
    """True when the process that made `tmp` still runs (same pid and start time)."""
    try:
        owner = json.loads((tmp / OWNER_FILE).read_text())
    except FileNotFoundError:
        # Written right after mkdtemp: a very young dir without it is still being set up.
        return time.time() - tmp.stat().st_mtime < 60
    except (OSError, ValueError):
        return False
    info = _proc_info(int(owner["pid"]))
    return info is not None and info.state != "Z" and info.start_ticks == owner["start_ticks"]


def find_leftovers(run_id: str | None = None) -> list[Path]:
    """Our server temp dirs in the temp roots (base dir, /dev/shm, the temp dir).

    With `run_id`: every dir of that run (the caller says the run is over). Without: the
    dirs of any run whose owning process is gone, so a concurrent session is left alone.
    """
    pattern = glob.escape(temp_prefix(run_id)) + "*" if run_id else f"{TEMP_PREFIX}*-pg-*"
    found = [p for root in _temp_roots() for p in root.glob(pattern)]
    if run_id is None:
        found = [p for p in found if not _owner_alive(p)]
    return sorted(p for p in found if p.is_dir() and not p.is_symlink())


def clean_leftovers(run_id: str | None = None) -> list[str]:
    """Kill the postmasters still running in leftover dirs, remove the dirs; say what went."""
    removed: list[str] = []
    errors: list[str] = []
    for tmp in find_leftovers(run_id):
        killed = _kill_server(tmp / "data", timeout=10.0)
        _release_shared_memory(tmp / "data")
        try:
            shutil.rmtree(tmp)
        except FileNotFoundError:
            continue
        except OSError as exc:
            errors.append(f"{tmp}: {exc}")
            continue
        note = f" (killed postgres pids {', '.join(map(str, killed))})" if killed else ""
        removed.append(f"removed {tmp}{note}")
    if errors:
        raise TeardownErrors(errors)
    return removed


def _release_shared_memory(data_dir: Path) -> bool:
    """Remove the SysV segment a killed postmaster left, once nothing is attached to it.

    postmaster.pid (gone after a clean shutdown) records the segment's key and id on line 7.
    """
    try:
        key, shmid = map(int, (data_dir / "postmaster.pid").read_text().splitlines()[6].split())
        rows = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    except (OSError, ValueError, IndexError):
        return False
    for row in rows:
        fields = row.split()  # key shmid perms size cpid lpid nattch ...
        if (int(fields[0]), int(fields[1]), int(fields[6])) == (key, shmid, 0):
            libc = ctypes.CDLL(None, use_errno=True)
            return bool(libc.shmctl(ctypes.c_int(shmid), ctypes.c_int(_IPC_RMID), None) == 0)
    return False
