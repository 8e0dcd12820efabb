"""Every backend test: the app logs no unhandled error (a traceback means a 500 somewhere)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


class _Unhandled(logging.Handler):
    """Collects the error handler's 'Unhandled error' records and other tracebacks."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("backend") and record.exc_info:
            self.records.append(record)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "unhandled_errors_expected: the test provokes a logged server error"
    )


@pytest.fixture(autouse=True)
def no_unhandled_server_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    handler = _Unhandled()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
    if request.node.get_closest_marker("unhandled_errors_expected"):
        return
    found = [f"{r.name}: {r.getMessage()}" for r in handler.records]
    assert not found, f"the server logged unhandled errors: {found}"
