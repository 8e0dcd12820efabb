"""Database failures as the error shape: 503 while the database is away or busy, 400 for text
it cannot store; never a 500 for something the caller can retry or fix."""

from __future__ import annotations

import logging

import psycopg
from flask import Flask, Response
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout

from backend.db import Database, first_line
from backend.utils.error_handling import handle_business, internal_error_response
from backend.utils.errors import (
    BusinessLogicException,
    DatabaseUnavailableException,
    RequestValidationException,
    ServiceBusyException,
)

logger = logging.getLogger(__name__)

# Lock conflicts that end when the other transaction (e.g. a testing reset) ends.
_CONTENTION = (
    pg_errors.DeadlockDetected,
    pg_errors.LockNotAvailable,
    pg_errors.SerializationFailure,
    pg_errors.QueryCanceled,
)
_UNSTORABLE_TEXT = (pg_errors.UntranslatableCharacter, pg_errors.CharacterNotInRepertoire)


def translate_database_error(
    exc: BaseException, database: Database
) -> BusinessLogicException | None:
    """The caller-facing error for a database failure, or None when it is a server bug."""
    if isinstance(exc, PoolTimeout):
        reason = database.probe()
        if reason is not None:
            return DatabaseUnavailableException(database.label, reason)
        return database.busy()
    if isinstance(exc, _UNSTORABLE_TEXT):
        return RequestValidationException("body", f"text the database cannot store: {exc}")
    if isinstance(exc, _CONTENTION):
        return ServiceBusyException(
            f"The database {database.label} is busy ({type(exc).__name__}: "
            f"{first_line(str(exc))}); a testing reset may hold its locks",
            retry_after=1,
            error_code="DATABASE_BUSY",
            details={"database": database.label},
        )
    if isinstance(exc, psycopg.OperationalError):
        reason = database.probe() or first_line(str(exc)) or type(exc).__name__
        return DatabaseUnavailableException(database.label, reason)
    return None


def init_app(app: Flask, database: Database) -> None:
    """Register the handlers for psycopg and psycopg_pool errors (the one SQLAlchemy user, the
    testing reset, raises the psycopg error its DBAPIError wraps)."""

    def handle(exc: Exception) -> Response:
        translated = translate_database_error(exc, database)
        if translated is None:
            return internal_error_response(exc)
        logger.warning("Database error answered as %s: %s", translated.error_code, exc)
        return handle_business(translated)

    for kind in (PoolTimeout, psycopg.Error):
        app.register_error_handler(kind, handle)
