"""Correlation: X-Request-Id / X-Test-Id accepted or minted, echoed, in error bodies and logs."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests

from backend.utils.correlation import current_correlation_id, current_test_id
from tests.fixtures.backend import served_app
from tests.fixtures.backend import testing_settings as settings_for

HEALTHZ = "/api/health/healthz"
RESET = "/api/testing/reset"
RESET_LOGGER = "backend.services.testing_service"


class RecordCollector(logging.Handler):
    """Keeps every record the root logger sees, from any thread."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def from_logger(self, name: str) -> list[logging.LogRecord]:
        return [r for r in self.records if r.name == name]


@contextmanager
def collected_records() -> Iterator[RecordCollector]:
    collector = RecordCollector()
    root = logging.getLogger()
    root.addHandler(collector)
    try:
        yield collector
    finally:
        root.removeHandler(collector)


def ids_of(record: logging.LogRecord) -> tuple[str | None, str | None]:
    """(correlation_id, test_id) the backend's record factory stamped on `record`."""
    stamped = vars(record)
    return stamped["correlation_id"], stamped["test_id"]


def is_uuid4(value: str) -> bool:
    try:
        return uuid.UUID(value).version == 4 and str(uuid.UUID(value)) == value
    except ValueError:
        return False


# --- headers --------------------------------------------------------------------------------


def test_request_id_is_minted_as_uuid4_when_absent(client):
    first = client.get(HEALTHZ).headers["X-Request-Id"]
    second = client.get(HEALTHZ).headers["X-Request-Id"]
    assert is_uuid4(first), first
    assert is_uuid4(second), second
    assert first != second


@pytest.mark.parametrize("incoming", ["abc-123", "run:42/test@node+1=x", "a" * 200])
def test_safe_request_id_is_echoed_unchanged(client, incoming):
    response = client.get(HEALTHZ, headers={"X-Request-Id": incoming})
    assert response.headers["X-Request-Id"] == incoming


@pytest.mark.parametrize(
    "unsafe", ["has spaces", "a" * 201, "semi;colon", 'quote"d', "new\u00e9"], ids=repr
)
def test_unsafe_request_id_is_replaced_by_a_fresh_uuid4(client, unsafe):
    echoed = client.get(HEALTHZ, headers={"X-Request-Id": unsafe}).headers["X-Request-Id"]
    assert echoed != unsafe
    assert is_uuid4(echoed), echoed


def test_test_id_is_echoed_and_absent_when_not_sent(client):
    response = client.get(HEALTHZ, headers={"X-Test-Id": "tests/test_x.py::test_y"})
    assert response.headers["X-Test-Id"] == "tests/test_x.py::test_y"
    assert "X-Test-Id" not in client.get(HEALTHZ).headers
    assert "X-Test-Id" not in client.get(HEALTHZ, headers={"X-Test-Id": "bad id"}).headers


def test_error_body_carries_the_correlation_id(client):
    response = client.get("/api/command-types/987654321", headers={"X-Request-Id": "err-1"})
    assert response.status_code == 404
    assert response.json["correlationId"] == "err-1"
    assert response.headers["X-Request-Id"] == "err-1"


def test_error_body_carries_a_minted_correlation_id(client):
    response = client.get("/api/no-such-route")
    assert response.status_code == 404
    assert is_uuid4(response.json["correlationId"])
    assert response.json["correlationId"] == response.headers["X-Request-Id"]


# --- logs -----------------------------------------------------------------------------------


def test_log_records_emitted_while_serving_carry_both_ids(client):
    with collected_records() as collector:
        response = client.post(RESET, headers={"X-Request-Id": "log-1", "X-Test-Id": "t-log-1"})
    assert response.status_code == 200
    records = collector.from_logger(RESET_LOGGER)
    assert records, "the reset endpoint logs its completion"
    assert [ids_of(r) for r in records] == [("log-1", "t-log-1")] * len(records)


def test_log_records_carry_the_minted_id_when_none_is_sent(client):
    with collected_records() as collector:
        response = client.post(RESET)
    records = collector.from_logger(RESET_LOGGER)
    assert records
    assert {ids_of(r) for r in records} == {(response.headers["X-Request-Id"], None)}


def test_ids_are_unbound_from_the_thread_after_the_request(client):
    # The test client serves on this very thread: what the request bound must be gone after.
    client.get(HEALTHZ, headers={"X-Request-Id": "bound", "X-Test-Id": "bound-test"})
    assert current_correlation_id() is None
    assert current_test_id() is None


def test_ids_do_not_leak_between_requests_on_a_reused_server_thread(make_migrated_database):
    # One waitress thread: every request runs on the same thread, so a leak would show.
    with served_app(settings_for(make_migrated_database()), threads=1) as server:
        sent = [
            {"X-Request-Id": "first", "X-Test-Id": "test-one"},
            {"X-Request-Id": "second"},
            {},
        ]
        with collected_records() as collector:
            echoed = []
            for headers in sent:
                response = requests.post(server.url + RESET, headers=headers, timeout=30)
                assert response.status_code == 200, response.text
                echoed.append(response.headers["X-Request-Id"])
        seen = [ids_of(r) for r in collector.from_logger(RESET_LOGGER)]
    assert echoed[:2] == ["first", "second"]
    assert is_uuid4(echoed[2])
    assert seen == [("first", "test-one"), ("second", None), (echoed[2], None)]
