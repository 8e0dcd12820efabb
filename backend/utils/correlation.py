"""Correlation and test ids: carried in context variables and stamped on every log record."""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

REQUEST_ID_HEADER = "X-Request-Id"
TEST_ID_HEADER = "X-Test-Id"

correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)
test_id_var: ContextVar[str | None] = ContextVar("test_id", default=None)

# Ids come from clients: accept only short printable tokens so they are safe in logs/headers.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:/@+=-]{1,200}$")


def sanitize_id(raw: str | None) -> str | None:
    """Return `raw` if it is a safe id, else None."""
    if raw is None:
        return None
    raw = raw.strip()
    return raw if _SAFE_ID.match(raw) else None


def new_correlation_id() -> str:
    return str(uuid.uuid4())


def current_correlation_id() -> str | None:
    return correlation_id_var.get()


def current_test_id() -> str | None:
    return test_id_var.get()


class correlation_scope:
    """Run a block (a worker's command, a background task) under the given ids.

    A class, not @contextmanager: the worker enters one per command, and the generator
    machinery cost more than the two context variables themselves."""

    __slots__ = ("_ids", "_tokens")

    def __init__(self, correlation_id: str | None, test_id: str | None) -> None:
        self._ids = (correlation_id, test_id)

    def __enter__(self) -> None:
        self._tokens = (correlation_id_var.set(self._ids[0]), test_id_var.set(self._ids[1]))

    def __exit__(self, *_exc: object) -> None:
        cid_token, tid_token = self._tokens
        correlation_id_var.reset(cid_token)
        test_id_var.reset(tid_token)


_installed = False


def install_log_record_factory() -> None:
    """Make every LogRecord carry `correlation_id` and `test_id` (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if not hasattr(record, "correlation_id") or record.correlation_id is None:
            record.correlation_id = correlation_id_var.get()
        if not hasattr(record, "test_id") or record.test_id is None:
            record.test_id = test_id_var.get()
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
