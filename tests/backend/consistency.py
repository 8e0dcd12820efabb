"""Checks that a database is whole after abuse: schema at head, queue present, rows paired."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from backend.bus import QUEUE_NAME

ERROR_KEYS = {"error", "code", "details", "correlationId"}


def assert_consistent(database_url: str) -> None:
    """Migrated to head, the demo queue exists, every bus command has its app row and back."""
    with psycopg.connect(database_url) as conn:
        version = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        assert version == [("0005",)], version
        queue = conn.execute(
            "SELECT count(*) FROM pgmq.meta WHERE queue_name = %s", (QUEUE_NAME,)
        ).fetchone()
        assert queue == (1,), "the demo queue is missing"
        orphans = conn.execute(
            """
            SELECT (SELECT count(*) FROM commandbus.command c
                    WHERE NOT EXISTS (SELECT 1 FROM test_command t
                                      WHERE t.command_id = c.command_id)),
                   (SELECT count(*) FROM test_command t
                    WHERE NOT EXISTS (SELECT 1 FROM commandbus.command c
                                      WHERE c.command_id = t.command_id))
            """
        ).fetchone()
        assert orphans == (0, 0), f"(bus commands without row, rows without bus command) {orphans}"
        types = conn.execute("SELECT count(*) FROM command_type WHERE name = 'TestCommand'")
        assert types.fetchone() == (1,), "the master data is missing"


def assert_error_shape(response, status: int, code: str) -> dict:
    """The shared error shape of a Flask test response or a `requests` response."""
    body = response.json() if callable(response.json) else response.json
    assert response.status_code == status, body
    assert set(body) == ERROR_KEYS, body
    assert body["code"] == code, body
    assert body["correlationId"] == response.headers["X-Request-Id"]
    if status == 503:
        assert int(response.headers["Retry-After"]) >= 1
    return body


class _ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def no_unhandled_errors() -> Iterator[None]:
    """Fail when the block logged an ERROR record (e.g. an unhandled error's traceback)."""
    handler = _ErrorRecords()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
    messages = [f"{r.name}: {r.getMessage()}" for r in handler.records]
    assert not messages, messages
