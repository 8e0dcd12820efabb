"""The template data dir: initdb'ed once per install and user, copied for each server."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from orchestrator.embedded_postgres.binaries import INSTALL_CACHE_ROOT, Install
from orchestrator.embedded_postgres.leftovers import TEMP_PREFIX, require_owned
from orchestrator.embedded_postgres.run_as import RunAs, run_as_kwargs, run_or_fail

# 1 MB WAL segments (not 16): every server copies the template, WAL included.
_INITDB_OPTIONS = ("-E", "UTF8", "--locale=C", "-N", "--auth=trust", "--wal-segsize=1")
_WHAT = "template data dir"


def template_data_dir(install: Install, run_as: RunAs | None, user: str) -> Path:
    """A data dir initdb'ed once per install, superuser and OS user, under /var/tmp.

    Servers start from a copy: copying is several times cheaper than initdb, which runs
    PostgreSQL in bootstrap mode. Auth is set per server (pg_hba.conf, ALTER ROLE ... PASSWORD).
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
    if os.path.lexists(final):  # a predictable name in a shared dir: ours, or refused
        require_owned(final, uid, _WHAT)
        if (final / "PG_VERSION").is_file():
            return final
    staging = Path(tempfile.mkdtemp(dir=INSTALL_CACHE_ROOT, prefix=f".{name}-"))
    try:
        if run_as is not None:
            os.chown(staging, run_as.uid, run_as.gid)
        initdb = [str(install.bindir / "initdb"), "-D", str(staging), "-U", user, *_INITDB_OPTIONS]
        run_or_fail("initdb", initdb, **run_as_kwargs(run_as, staging))
        try:
            os.rename(staging, final)  # atomic; a concurrent winner makes this fail
        except OSError:
            if not (final / "PG_VERSION").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return require_owned(final, uid, _WHAT)
