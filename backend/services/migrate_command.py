"""`python -m backend migrate`: upgrade to head, then sync master data."""

from __future__ import annotations

import logging
import time

import psycopg

from backend.config import Settings
from backend.services.master_data import sync_master_data_from_setup
from backend.services.migration_service import upgrade_to_head
from backend.utils.logging_setup import configure_logging

logger = logging.getLogger(__name__)


def migrate(settings: Settings) -> int:
    configure_logging(settings.log_level)
    started = time.perf_counter()
    try:
        upgrade_to_head(settings.database_url)
        with psycopg.connect(settings.database_url) as conn:
            result = sync_master_data_from_setup(conn)
    except psycopg.OperationalError as exc:
        logger.error("Migration failed: database unreachable: %s", exc)
        return 1
    logger.info(
        "Migrations at head; master data synced (added=%d updated=%d) in %.3fs",
        result.added,
        result.updated,
        time.perf_counter() - started,
    )
    return 0
