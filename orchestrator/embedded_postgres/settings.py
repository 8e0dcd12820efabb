"""Server configuration for a throwaway database: postgres settings and pg_hba.conf."""

from __future__ import annotations

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
HBA_TEMPLATE = """\
# Written by orchestrator.embedded_postgres: the unix socket is trusted, TCP uses {method}.
local all all trust
host all all 127.0.0.1/32 {method}
host all all ::1/128 {method}
"""
