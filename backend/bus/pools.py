"""The worker's connection pools, and a health check that costs nothing under load.

`ConnectionPool.check_connection` on every checkout is one extra round trip per query the
worker makes (several per command). A connection handed out moments ago is known to work;
only one that sat unused for a while (when a database restart could have killed it) is
checked.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

from psycopg import Connection
from psycopg_pool import ConnectionPool


class CheckWhenIdle:
    """A pool `check` callback: a real check only after `idle_seconds` without checkouts."""

    def __init__(self, idle_seconds: float = 2.0) -> None:
        self.idle_seconds = idle_seconds
        self._handed_out: weakref.WeakKeyDictionary[Connection[Any], float] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def __call__(self, conn: Connection[Any]) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._handed_out.get(conn)
            self._handed_out[conn] = now
        if last is None or now - last > self.idle_seconds:
            ConnectionPool.check_connection(conn)


def worker_pools(
    database_url: str, concurrency: int
) -> tuple[ConnectionPool[Any], ConnectionPool[Any]]:
    """(the library's pool, the handler's autocommit pool), both unopened.

    The library's pool: LISTEN keeps one connection for the whole run, the poll loop and
    each command's completion need more. The handler's statements are single statements:
    autocommit saves their BEGIN and COMMIT round trips.
    """
    check = CheckWhenIdle()
    bus_pool: ConnectionPool[Any] = ConnectionPool(
        database_url,
        min_size=2,
        max_size=concurrency * 2 + 3,
        open=False,
        check=check,
        name="worker",
    )
    handler_pool: ConnectionPool[Any] = ConnectionPool(
        database_url,
        min_size=1,
        max_size=concurrency + 1,
        open=False,
        check=check,
        kwargs={"autocommit": True},
        name="handler",
    )
    return bus_pool, handler_pool
