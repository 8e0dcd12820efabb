"""The database connection pool the backend shares between requests and services."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from psycopg import Connection
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool


class Database:
    """A psycopg pool; `transaction()` commits on success and rolls back on error."""

    def __init__(self, url: str, max_size: int = 20, checkout_timeout: float = 5.0) -> None:
        self.url = url
        self.checkout_timeout = checkout_timeout
        # Opened lazily and without waiting, so the process serves /healthz even when the
        # database is down; `check` drops dead connections (e.g. after a database restart).
        self.pool: ConnectionPool[Connection[TupleRow]] = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            open=False,
            check=ConnectionPool.check_connection,
            name="backend",
        )

    def open(self) -> None:
        self.pool.open(wait=False)

    def close(self) -> None:
        self.pool.close(timeout=2.0)

    @contextmanager
    def transaction(self, timeout: float | None = None) -> Iterator[Connection[TupleRow]]:
        with self.pool.connection(timeout=timeout or self.checkout_timeout) as conn:
            yield conn


def sqlalchemy_url(url: str) -> str:
    """Alembic runs on SQLAlchemy: point it at the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
