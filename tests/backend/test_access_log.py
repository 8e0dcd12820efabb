"""One `backend.access` record per HTTP request, with the request's ids, in the log stream."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterator

import pytest
import requests
from flask.testing import FlaskClient

from backend.utils.access_log import ACCESS_LOGGER
from backend.utils.logging_setup import JsonLineFormatter
from orchestrator.sse_client import SSEClient
from tests.fixtures.backend import LiveServer, served_app, testing_settings, wait_until

MESSAGE = re.compile(r"^(GET|POST|PUT|DELETE) \S+ \d{3} \d+\.\dms$")
RECORD_KEYS = {"timestamp", "level", "logger", "message", "correlation_id", "test_id", "extra"}


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == ACCESS_LOGGER]


def test_every_request_gets_one_record_with_its_ids(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    test_id = f"access-{uuid.uuid4().hex[:8]}"
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    responses = [
        client.get("/api/stats", headers={"X-Test-Id": test_id}),
        client.get("/api/commands/not-a-uuid", headers={"X-Test-Id": test_id}),
        client.post("/api/commands", json={"bad": 1}, headers={"X-Test-Id": test_id}),
    ]
    records = [r for r in access_records(caplog) if getattr(r, "test_id", None) == test_id]
    assert [(r.method, r.path, r.status) for r in records] == [  # type: ignore[attr-defined]
        ("GET", "/api/stats", 200),
        ("GET", "/api/commands/not-a-uuid", 404),
        ("POST", "/api/commands", 400),
    ]
    for record, response in zip(records, responses, strict=True):
        assert record.levelno == logging.INFO
        assert MESSAGE.match(record.getMessage()), record.getMessage()
        assert getattr(record, "correlation_id", None) == response.headers["X-Request-Id"]
        assert getattr(record, "duration_ms", -1) >= 0
        line = json.loads(JsonLineFormatter().format(record))
        assert set(line) == RECORD_KEYS
        assert set(line["extra"]) == {"method", "path", "status", "duration_ms"}


@pytest.fixture
def server(migrated_database_url: str) -> Iterator[LiveServer]:
    settings = testing_settings(migrated_database_url, sse_heartbeat_interval=0.2)
    with served_app(settings) as live:
        yield live


def test_access_records_reach_the_log_stream(server: LiveServer) -> None:
    test_id = f"stream-{uuid.uuid4().hex[:8]}"
    with SSEClient(f"{server.url}/api/testing/logs/stream", timeout=5) as stream:
        assert stream.next_event()["event"] == "connection_open"
        requests.get(f"{server.url}/api/stats", headers={"X-Test-Id": test_id}, timeout=5)
        events = stream.events_until(
            lambda ev: ev["event"] == "log" and ev["data"]["test_id"] == test_id, 5
        )
    record = events[-1]["data"]
    assert record["logger"] == ACCESS_LOGGER
    assert record["message"].startswith("GET /api/stats 200 ")
    assert record["extra"]["path"] == "/api/stats" and record["extra"]["status"] == 200


def test_a_stream_is_logged_once_not_per_heartbeat(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    with SSEClient(f"{server.url}/api/testing/logs/stream", timeout=5) as stream:
        beats = stream.events_until(lambda ev: ev["event"] == "heartbeat", 5)
        for _ in range(3):
            beats.append(stream.next_event())
    assert sum(ev["event"] == "heartbeat" for ev in beats) >= 3

    def stream_records() -> list[logging.LogRecord]:
        path = "/api/testing/logs/stream"
        return [r for r in access_records(caplog) if getattr(r, "path", None) == path]

    wait_until(stream_records, 5, message="the stream's access record")
    assert len(stream_records()) == 1
