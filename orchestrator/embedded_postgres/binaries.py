"""Finding the PostgreSQL binaries and making them reachable for the user that runs them.

Binaries come from, in order: the `bindir` argument, `STACK_PG_BINDIR`, the `pgserver`
wheel. When the run user cannot reach the install (say, a venv inside a 0700 dir), the
install is copied once into a world-readable cache under /var/tmp and run from there.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from importlib.util import find_spec
from pathlib import Path

from orchestrator.embedded_postgres.install import Install
from orchestrator.embedded_postgres.leftovers import TEMP_PREFIX, require_owned
from orchestrator.embedded_postgres.run_as import RunAs
from orchestrator.errors import OrchestratorError, PrerequisiteMissing

INSTALL_CACHE_ROOT = Path("/var/tmp")
_WHAT = "cached PostgreSQL install"
BINARIES_FIX = (
    "pip install pgserver==0.1.4, or pass --pg-bindir / set STACK_PG_BINDIR "
    "to a PostgreSQL bin directory"
)


def resolve_bindir(bindir: Path | None = None) -> Path:
    """The PostgreSQL bin dir to use: `bindir` (the `pg_bindir` setting), else pgserver's."""
    if bindir is not None:
        candidate, source = bindir, "pg-bindir (--pg-bindir, STACK_PG_BINDIR)"
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


def reachable_install(install: Install, run_as: RunAs | None) -> Install:
    """`install`, or a world-readable cached copy of it when `run_as` cannot reach it."""
    if run_as is None or run_as.can_use(install):
        return install
    if not install.is_self_contained():
        raise PrerequisiteMissing(
            f"user {run_as.name!r} cannot reach the PostgreSQL install at {install.root}, "
            "and it is not self-contained, so it cannot be copied",
            f"make {install.bindir} readable for {run_as.name!r}, or use the pgserver binaries",
        )
    copy = Install.inspect(_cached_copy(install) / "bin")
    if not run_as.can_use(copy):
        raise OrchestratorError(f"user {run_as.name!r} cannot use the cached install {copy.root}")
    return copy


def _cached_copy(install: Install) -> Path:
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
    if os.path.lexists(final):  # a predictable name in a shared dir: ours, or refused
        require_owned(final, os.geteuid(), _WHAT)
        if (copied_root / "bin" / "postgres").is_file():
            return copied_root
    staging = Path(tempfile.mkdtemp(dir=INSTALL_CACHE_ROOT, prefix=f".{name}-"))
    try:
        shutil.copytree(root, staging / package.name / root.name, symlinks=True)
        if libs.is_dir():
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        make_world_readable(staging)  # our own fresh copy: nothing pre-existing is loosened
        try:
            os.rename(staging, final)  # atomic; a concurrent winner makes this fail
        except OSError:
            if not (copied_root / "bin" / "postgres").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    require_owned(final, os.geteuid(), _WHAT)
    return copied_root


def make_world_readable(root: Path) -> None:
    """Every dir and file under `root` readable (and executables runnable) by every user."""
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            path = Path(dirpath, name)
            if path.is_symlink():
                continue
            mode = stat.S_IMODE(path.stat().st_mode)
            path.chmod(mode | 0o444 | (0o111 if mode & stat.S_IXUSR else 0))
