"""A throwaway PostgreSQL server with PGMQ, run from local binaries (no Docker).

Binaries come from the `bindir` argument, else the `pgserver` wheel. Each server lives in a
temp dir named `ci-stack-<run id>-pg-*` (data dir, unix socket, log) under `base_dir`, else
/dev/shm when it is roomy, else the temp dir; (the orchestrator passes its settings
`pg_bindir` and `pg_tmpdir` in: nothing here reads the environment) `stop()` removes it and
`clean_leftovers()` removes what a killed run left.

As root, initdb and postgres are run as the `postgres` system user (else `nobody`). When
that user cannot reach the install (say, a venv inside a 0700 dir), the install is copied
once into a world-readable cache under /var/tmp and run from there.
"""

from orchestrator.embedded_postgres.binaries import (
    BINARIES_FIX,
    INSTALL_CACHE_ROOT,
    resolve_bindir,
)
from orchestrator.embedded_postgres.leftovers import (
    OWNER_FILE,
    TEMP_PREFIX,
    TMPFS_DIR,
    clean_leftovers,
    default_base_dir,
    find_leftovers,
    temp_prefix,
)
from orchestrator.embedded_postgres.ready import PostgresReady
from orchestrator.embedded_postgres.server import HOST, EmbeddedPostgres
from orchestrator.embedded_postgres.settings import SERVER_SETTINGS

__all__ = [
    "BINARIES_FIX",
    "HOST",
    "INSTALL_CACHE_ROOT",
    "OWNER_FILE",
    "SERVER_SETTINGS",
    "TEMP_PREFIX",
    "TMPFS_DIR",
    "EmbeddedPostgres",
    "PostgresReady",
    "clean_leftovers",
    "default_base_dir",
    "find_leftovers",
    "resolve_bindir",
    "temp_prefix",
]
