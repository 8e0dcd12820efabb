"""The testing reset: drop everything, migrate from scratch, sync master data, maybe seed."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from backend.db import sqlalchemy_url
from backend.services import seed_data
from backend.services.master_data import sync_master_data_from_setup
from backend.services.migration_service import upgrade_on_connection
from backend.utils.errors import ServiceBusyException
from backend.utils.reset_lock import ResetLock

if TYPE_CHECKING:  # SQLAlchemy is imported on the first reset: the server starts without it
    from sqlalchemy.engine import Connection as SAConnection
    from sqlalchemy.engine import Engine

logger = logging.getLogger(__name__)

WRITERS_DRAIN_SECONDS = 10.0

# Objects our migrations create outside `public`; public's own tables are found in the catalog.
_DROP_NON_PUBLIC = """
DROP SCHEMA IF EXISTS commandbus CASCADE;
DROP EXTENSION IF EXISTS pgmq CASCADE;
DROP SCHEMA IF EXISTS pgmq CASCADE;
"""


@dataclass(frozen=True)
class ResetResult:
    seeded: bool
    seconds: float

    def to_dict(self) -> dict[str, object]:
        return {"status": "complete", "mode": "testing", "seeded": self.seeded}


class TestingService:
    """Owns the reset; one at a time (a concurrent call is refused with 503)."""

    __test__ = False  # not a pytest class

    def __init__(self, database_url: str, reset_lock: ResetLock) -> None:
        self.database_url = database_url
        self.reset_lock = reset_lock
        self._engine: Engine | None = None

    def _get_engine(self) -> Engine:
        if self._engine is None:
            from sqlalchemy import create_engine, pool

            self._engine = create_engine(
                sqlalchemy_url(self.database_url),
                poolclass=pool.QueuePool,
                pool_size=1,
                max_overflow=0,
                pool_pre_ping=True,
            )
        return self._engine

    def reset(self, seed: bool) -> ResetResult:
        if not self.reset_lock.acquire_reset():
            raise ServiceBusyException("A database reset is already in progress", retry_after=5)
        started = time.perf_counter()
        try:
            # Sends in flight lock the app's tables before the bus's: let them finish first.
            if not self.reset_lock.wait_for_writers(WRITERS_DRAIN_SECONDS):
                raise ServiceBusyException(
                    f"Writes in progress did not finish within {WRITERS_DRAIN_SECONDS:g}s; "
                    "the reset did not start",
                    retry_after=2,
                )
            self._reset_in_one_transaction(seed)
        finally:
            self.reset_lock.release_reset()
        seconds = time.perf_counter() - started
        logger.info("Database reset complete in %.3fs (seeded=%s)", seconds, seed)
        return ResetResult(seeded=seed, seconds=seconds)

    def _reset_in_one_transaction(self, seed: bool) -> None:
        """Readers see the old database or the new one, never half of it. A database error
        is raised as psycopg's, which the app's handlers translate (SQLAlchemy's wrapper is
        not imported until the first reset)."""
        from sqlalchemy.exc import DBAPIError

        try:
            with self._get_engine().begin() as conn:
                conn.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
                drop_everything(conn)
                upgrade_on_connection(conn)
                raw = conn.connection.driver_connection
                sync_master_data_from_setup(raw)  # type: ignore[arg-type]
                if seed:
                    seed_data.load_full_dataset(raw)  # type: ignore[arg-type]
        except DBAPIError as exc:
            if isinstance(exc.orig, Exception):
                raise exc.orig from exc
            raise

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def drop_everything(conn: SAConnection) -> None:
    """Remove every object our migrations made, leaving an empty `public` schema."""
    conn.exec_driver_sql(_DROP_NON_PUBLIC)
    tables = (
        conn.exec_driver_sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        .scalars()
        .all()
    )
    if tables:
        names = ", ".join(f'public."{name}"' for name in tables)
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {names} CASCADE")
    sequences = (
        conn.exec_driver_sql(
            "SELECT sequence_name FROM information_schema.sequences"
            " WHERE sequence_schema = 'public'"
        )
        .scalars()
        .all()
    )
    if sequences:
        names = ", ".join(f'public."{name}"' for name in sequences)
        conn.exec_driver_sql(f"DROP SEQUENCE IF EXISTS {names} CASCADE")
