"""Baseline contract of GET /api/utils/version/stream, seen by a real SSE client.

The sequence: connection_open, at once a version event, then a heartbeat every
SSE_HEARTBEAT_INTERVAL until shutdown, which sends connection_close and ends the response.
A failure reading the version data is a stream_error event then connection_close.
Every stream's first frame sets `retry:` (the browser's reconnect delay).

Changed on purpose (issue 12): the failure event was named `error`, which collides with the
browser EventSource's own `error` event; it is `stream_error` now.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests

from backend.api.stream_generators import version_stream
from backend.app import create_app
from backend.config import ENVIRONMENTS
from backend.services.container import Container
from backend.utils.shutdown import ShutdownCoordinator
from backend.utils.sse import RECONNECT_DELAY_MS, STREAM_ERROR
from tests.fixtures.backend import LiveServer
from tests.fixtures.backend import testing_settings as make_settings
from tests.integration.conftest import (
    SSEClientFactory,
    SSEServer,
    arrival_times,
    assert_ended_after_close,
    assert_iso_utc,
    gaps,
    names,
    nth,
    without_heartbeats,
)
from tests.integration.sse_client_helper import SSEClient, SSEEvent, SSEParser

pytestmark = [pytest.mark.integration, pytest.mark.sse]

PATH = "/api/utils/version/stream"
# The factory sends the test's X-Test-Id (for its log slice); events then carry test_id.
SENT_ID_FIELDS = {"test_id"}
VERSION_FIELDS = {"version": str, "environment": str, "git_commit": str, "correlation_id": str}


def unique_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# -- over HTTP --------------------------------------------------------------------------------


def test_http_200_event_stream_no_cache(sse_client_factory: SSEClientFactory) -> None:
    client = sse_client_factory(PATH)

    assert client.status_code == 200
    assert client.response_headers["Content-Type"].startswith("text/event-stream")
    assert client.response_headers["Cache-Control"] == "no-cache"


def test_connection_open_then_version_at_once(
    sse_server: SSEServer, sse_client_factory: SSEClientFactory
) -> None:
    client = sse_client_factory(PATH)

    events = client.events_until("version", timeout=sse_server.heartbeat_interval)

    assert names(events) == ["connection_open", "version"]
    assert events[0]["data"]["status"] == "connected"
    opened, version = arrival_times(client, "connection_open"), arrival_times(client, "version")
    assert version[0] - opened[0] < min(1.0, sse_server.heartbeat_interval / 2)


def test_version_event_fields_and_types(
    sse_server: SSEServer, sse_client_factory: SSEClientFactory
) -> None:
    client = sse_client_factory(PATH)

    version = client.events_until("version")[-1]["data"]

    for field, kind in VERSION_FIELDS.items():
        assert isinstance(version.get(field), kind), f"{field}: {version.get(field)!r}"
    assert version["version"]
    assert version["environment"] in ENVIRONMENTS
    assert version["environment"] == "testing"  # the suite needs the testing endpoints
    # The stream reports the same facts as the plain JSON endpoint.
    plain = requests.get(f"{sse_server.url}/api/utils/version", timeout=10).json()
    ids = {"correlation_id"} | SENT_ID_FIELDS
    assert {k: v for k, v in version.items() if k not in ids} == plain


def test_heartbeats_every_interval_within_twice_the_setting(
    sse_server: SSEServer, sse_client_factory: SSEClientFactory
) -> None:
    interval = sse_server.heartbeat_interval
    client = sse_client_factory(PATH)

    events = client.events_until(nth("heartbeat", 4), timeout=8 * interval + 5)

    assert names(events) == ["connection_open", "version"] + ["heartbeat"] * 4
    stamps = []
    for beat in events[2:]:
        assert set(beat["data"]) == {"timestamp", "correlation_id"} | SENT_ID_FIELDS
        stamps.append(assert_iso_utc(beat["data"]["timestamp"]))
    assert stamps == sorted(stamps)
    times = arrival_times(client, "version") + arrival_times(client, "heartbeat")
    for gap in gaps(times):
        assert 0.5 * interval < gap <= 2 * interval, (
            f"heartbeat gaps {gaps(times)} not within (0.5, 2] x {interval}s"
        )


def test_connection_stays_open_for_several_intervals(
    sse_server: SSEServer, sse_client_factory: SSEClientFactory
) -> None:
    interval = sse_server.heartbeat_interval
    client = sse_client_factory(PATH)

    events = client.events_until(nth("heartbeat", 3), timeout=6 * interval + 5)
    still_open = client.next_event(timeout=2 * interval)

    assert "connection_close" not in names(events)
    assert STREAM_ERROR not in names(events)
    assert still_open["event"] == "heartbeat"
    assert client.transcript[-1]["kind"] == "event", "the stream ended early"


def test_every_event_carries_the_sent_request_id(sse_client_factory: SSEClientFactory) -> None:
    request_id = unique_id("sse-version")
    client = sse_client_factory(PATH, headers={"X-Request-Id": request_id}, send_test_id=False)

    events = client.events_until("heartbeat")

    assert client.response_headers["X-Request-Id"] == request_id
    assert names(events) == ["connection_open", "version", "heartbeat"]
    for event in events:
        assert event["data"]["correlation_id"] == request_id, event
        assert "test_id" not in event["data"], event


def test_generated_request_id_is_echoed_and_in_every_event(
    sse_client_factory: SSEClientFactory,
) -> None:
    client = sse_client_factory(PATH)

    events = client.events_until("heartbeat")

    generated = client.response_headers.get("X-Request-Id")
    assert generated, "no X-Request-Id response header"
    for event in events:
        assert event["data"]["correlation_id"] == generated, event


def test_every_event_carries_the_sent_test_id(sse_client_factory: SSEClientFactory) -> None:
    test_id = unique_id("test")
    client = sse_client_factory(PATH, headers={"X-Test-Id": test_id})

    events = client.events_until("heartbeat")

    assert client.response_headers["X-Test-Id"] == test_id
    for event in events:
        assert event["data"]["test_id"] == test_id, event


def test_shutdown_sends_connection_close_and_ends_the_stream(
    request: pytest.FixtureRequest, sse_server: SSEServer
) -> None:
    if not sse_server.in_process:
        pytest.skip("shuts its own server down; needs the in-process mode")
    database_url = request.getfixturevalue("make_migrated_database")()
    app = create_app(make_settings(database_url, sse_heartbeat_interval=0.5))
    container: Container = app.extensions["container"]
    server = LiveServer(app).start()
    try:
        request_id = unique_id("sse-shutdown")
        with SSEClient(f"{server.url}{PATH}", headers={"X-Request-Id": request_id}) as client:
            client.events_until("version")
            container.coordinator.shutdown()
            events = client.collect_until_close()
    finally:
        try:
            server.stop()
        finally:
            container.close()

    assert names(without_heartbeats(events)) == ["connection_close"]
    assert events[-1]["data"] == {"reason": "shutdown", "correlation_id": request_id}
    assert_ended_after_close(client, events)


# -- the generator itself ---------------------------------------------------------------------


def frames_to_events(frames: list[str]) -> list[SSEEvent]:
    parser = SSEParser(strict=True)
    parsed = parser.feed("".join(frames))
    assert parser.finish() == "", "output ends inside an unfinished event"
    return [SSEEvent(event=frame.event, data=json.loads(frame.data)) for frame in parsed]


def run_version_stream(read_version: Callable[[], dict[str, Any]], shut_down: bool) -> list[str]:
    coordinator = ShutdownCoordinator(graceful_timeout=1.0)
    if shut_down:
        coordinator.shutdown()
    stream = version_stream(
        read_version=read_version,
        coordinator=coordinator,
        heartbeat_interval=0.05,
        correlation_id="corr-1",
        test_id="test-1",
    )
    return list(stream)  # ends by itself in both cases


def test_generator_read_error_sends_error_then_close() -> None:
    def broken() -> dict[str, Any]:
        raise OSError("version file unreadable")

    events = frames_to_events(run_version_stream(broken, shut_down=False))

    assert names(events) == ["connection_open", STREAM_ERROR, "connection_close"]
    assert "version file unreadable" in events[1]["data"]["error"]
    assert events[2]["data"]["reason"] == "error"
    for event in events:
        assert event["data"]["correlation_id"] == "corr-1"
        assert event["data"]["test_id"] == "test-1"


def test_generator_closes_on_shutdown() -> None:
    info = {"version": "9.9.9", "environment": "testing", "git_commit": "abc123"}

    events = frames_to_events(run_version_stream(lambda: dict(info), shut_down=True))

    assert names(events) == ["connection_open", "version", "connection_close"]
    assert events[1]["data"] == {**info, "correlation_id": "corr-1", "test_id": "test-1"}
    assert events[2]["data"]["reason"] == "shutdown"


def test_the_first_frame_sets_the_reconnect_delay() -> None:
    frames = run_version_stream(lambda: {"version": "1"}, shut_down=True)
    parser = SSEParser(strict=True)
    first = parser.feed(frames[0])[0]
    assert first.event == "connection_open"
    assert first.retry == RECONNECT_DELAY_MS
