"""reliable-cmd 0.2.2 on PGMQ >= 1.10: one narrow fix, applied once, before any bus or worker.

The library reads `SELECT * FROM pgmq.read(...)` / `pgmq.set_vt(...)` and takes column 4 as
the message. PGMQ 1.10 added `last_read_at` (and later `headers`) to the returned record, so
column 4 became a timestamp and every message failed. Selecting the five columns the parser
expects, by name, works with every PGMQ version.
"""

from __future__ import annotations

import threading
from importlib.metadata import version

from commandbus._core.pgmq_sql import PgmqSQL

SUPPORTED_VERSION = "0.2.2"
_COLUMNS = "msg_id, read_ct, enqueued_at, vt, message"
READ_SQL = f"SELECT {_COLUMNS} FROM pgmq.read(%s, %s, %s)"
SET_VT_SQL = f"SELECT {_COLUMNS} FROM pgmq.set_vt(%s, %s, %s)"

_lock = threading.Lock()
_applied = False


class IncompatibleCommandBus(RuntimeError):
    pass


def apply_pgmq_compat() -> None:
    """Patch the library's two statements (idempotent); refuse an unknown library version."""
    global _applied
    with _lock:
        if _applied:
            return
        installed = version("reliable-cmd")
        if installed != SUPPORTED_VERSION:
            raise IncompatibleCommandBus(
                f"backend/bus/compat.py targets reliable-cmd {SUPPORTED_VERSION}, found "
                f"{installed}. Re-check the READ/SET_VT column fix against the new release "
                "and update the pin in pyproject.toml."
            )
        PgmqSQL.READ = READ_SQL
        PgmqSQL.SET_VT = SET_VT_SQL
        _applied = True


def is_applied() -> bool:
    return _applied
