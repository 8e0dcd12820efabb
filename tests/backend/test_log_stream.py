"""The testing log stream (`/api/testing/logs/stream`) over real HTTP, plus its slow-client rules.

The LiveServer runs in this process, so records logged here reach the stream like the app's own.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Generator, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from backend.api.stream_generators import log_stream
from backend.utils.log_capture import LogCaptureHandler
from orchestrator.sse_client import SSEClient, SSEEvent, SSEParser
from tests.fixtures.backend import LiveServer, served_app
from tests.fixtures.backend import testing_settings as settings_for_tests

HEARTBEAT = 0.3
ISO_UTC_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def serving(database_url: str) -> AbstractContextManager[LiveServer]:
    """A testing-mode app with a short heartbeat, served until the block ends."""
    return served_app(settings_for_tests(database_url, sse_heartbeat_interval=HEARTBEAT))


@pytest.fixture
def server(migrated_database_url: str) -> Iterator[LiveServer]:
    with serving(migrated_database_url) as live:
        yield live


def open_log_stream(server: LiveServer, **headers: str) -> SSEClient:
    """A connected log-stream client; records logged from now on reach it."""
    client = SSEClient(f"{server.url}/api/testing/logs/stream", timeout=5, headers=headers)
    first = client.next_event()
    assert first["event"] == "connection_open", first
    return client


def logs_until(client: SSEClient, message: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Data of every `log` event up to and including the one whose message is `message`."""
    events = client.events_until(
        lambda ev: ev["event"] == "log" and ev["data"]["message"] == message, timeout
    )
    return [ev["data"] for ev in events if ev["event"] == "log"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def log_many(log: logging.Logger, count: int, prefix: str) -> None:
    for index in range(count):
        log.info("%s %d", prefix, index)


def test_stream_opens_with_connection_open(server: LiveServer):
    with SSEClient(f"{server.url}/api/testing/logs/stream", timeout=5) as client:
        first = client.next_event()
        assert client.status_code == 200
        assert client.response_headers["Content-Type"].startswith("text/event-stream")
        assert client.response_headers["Cache-Control"] == "no-cache"
    assert first == {
        "event": "connection_open",
        "data": {"status": "connected", "correlation_id": first["data"]["correlation_id"]},
    }


def test_request_logs_carry_the_request_ids_and_the_record_shape(server: LiveServer):
    with open_log_stream(server, **{"X-Request-Id": "stream-req", "X-Test-Id": "stream-test"}) as c:
        response = requests.post(
            f"{server.url}/api/testing/reset",
            headers={"X-Request-Id": "abc-123", "X-Test-Id": "my-test"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        events = c.events_until(
            lambda ev: (
                ev["event"] == "log" and ev["data"]["message"].startswith("Database reset complete")
            )
        )

    logs = [ev["data"] for ev in events if ev["event"] == "log"]
    from_request = [entry for entry in logs if entry["correlation_id"] == "abc-123"]
    assert from_request, f"no log record carried the request's id; got {logs}"
    for entry in from_request:
        # The record's ids, not the stream request's (stream-req / stream-test).
        assert entry["test_id"] == "my-test"
        assert set(entry) == {
            "timestamp",
            "level",
            "logger",
            "message",
            "correlation_id",
            "test_id",
            "extra",
        }
        assert ISO_UTC_MS.match(entry["timestamp"]), entry["timestamp"]
        stamp = datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00"))
        assert abs(datetime.now(UTC) - stamp) < timedelta(seconds=60)
        assert entry["level"] in {"INFO", "WARNING", "ERROR", "CRITICAL"}
        assert isinstance(entry["logger"], str) and entry["logger"]
        assert isinstance(entry["extra"], dict)
    done = from_request[-1]
    assert done["logger"] == "backend.services.testing_service"
    assert done["level"] == "INFO"


def test_info_and_above_from_any_logger_are_sent_but_debug_is_not(server: LiveServer):
    other = logging.getLogger("some.other")
    chatty = logging.getLogger(unique("test.chatty"))
    chatty.setLevel(logging.DEBUG)  # the logger lets DEBUG through; the stream must not
    marker = unique("levels")
    with open_log_stream(server) as client:
        chatty.debug("%s debug", marker)
        other.info("%s info", marker)
        other.warning("%s warning", marker, extra={"order_id": 7, "blob": object()})
        chatty.error("%s error", marker)
        logs = logs_until(client, f"{marker} error")

    mine = [entry for entry in logs if entry["message"].startswith(marker)]
    assert [(e["level"], e["logger"], e["message"]) for e in mine] == [
        ("INFO", "some.other", f"{marker} info"),
        ("WARNING", "some.other", f"{marker} warning"),
        ("ERROR", chatty.name, f"{marker} error"),
    ]
    extra = mine[1]["extra"]
    assert extra["order_id"] == 7
    assert extra["blob"].startswith("<object object at")  # not JSON: sent as its repr
    assert mine[0]["correlation_id"] is None and mine[0]["test_id"] is None


def test_records_logged_before_connecting_are_never_sent(server: LiveServer):
    log = logging.getLogger("test.before")
    before, after = unique("before"), unique("after")
    log.warning(before)
    with open_log_stream(server) as client:
        log.warning(after)
        logs = logs_until(client, after)

    assert before not in [entry["message"] for entry in logs]


def test_heartbeats_arrive_at_the_configured_interval(server: LiveServer):
    arrivals: list[float] = []
    with open_log_stream(server) as client:
        opened = time.perf_counter()
        while len(arrivals) < 4:
            event = client.next_event(timeout=HEARTBEAT * 2 + 0.5)
            if event["event"] == "heartbeat":
                arrivals.append(time.perf_counter())
                assert ISO_UTC_MS.match(event["data"]["timestamp"]), event

    gaps = [later - earlier for earlier, later in zip([opened, *arrivals], arrivals, strict=False)]
    assert all(HEARTBEAT / 2 <= gap <= HEARTBEAT * 2 for gap in gaps), gaps


def test_two_clients_receive_the_same_records(server: LiveServer):
    log = logging.getLogger("test.fanout")
    marker = unique("fanout")
    with open_log_stream(server) as first, open_log_stream(server) as second:
        for index in range(50):
            log.info("%s %d", marker, index)
        seen = [logs_until(client, f"{marker} 49") for client in (first, second)]

    messages = [[e["message"] for e in logs if e["message"].startswith(marker)] for logs in seen]
    assert messages[0] == [f"{marker} {index}" for index in range(50)]
    assert messages[1] == messages[0]


def test_a_client_that_does_not_read_blocks_neither_logging_nor_other_clients(
    server: LiveServer,
):
    log = logging.getLogger("test.stalled")
    marker = unique("stalled")
    stalled = requests.get(f"{server.url}/api/testing/logs/stream", stream=True, timeout=5)
    try:
        assert stalled.status_code == 200  # connected, and never read from again
        with open_log_stream(server) as reader:
            producer = threading.Thread(target=log_many, args=(log, 2000, marker))
            producer.start()
            producer.join(10)
            assert not producer.is_alive(), "logging blocked behind a client that does not read"
            events = reader.events_until(
                lambda ev: ev["event"] == "log" and ev["data"]["message"] == f"{marker} 1999"
            )
    finally:
        stalled.close()

    assert "dropped" not in [ev["event"] for ev in events]
    received = [ev["data"]["message"] for ev in events if ev["event"] == "log"]
    assert [m for m in received if m.startswith(marker)] == [f"{marker} {i}" for i in range(2000)]


def test_shutdown_sends_connection_close_to_every_client(make_migrated_database):
    with serving(make_migrated_database()) as server:
        first, second = open_log_stream(server), open_log_stream(server)
        try:
            server.stop()
            tails = [client.collect_until_close(timeout=5) for client in (first, second)]
        finally:
            first.close()
            second.close()

    for tail in tails:
        assert tail, "the stream ended without any event"
        assert tail[-1]["event"] == "connection_close", tail
        assert tail[-1]["data"]["reason"] == "shutdown"


# -- slow clients, at the handler level ------------------------------------------------------


def start_stream(capture: LogCaptureHandler) -> Generator[str, None, None]:
    """The log stream generator driven by hand (heartbeats every 5 s, no request ids)."""
    stream = log_stream(capture, 5.0, None, None)
    assert isinstance(stream, Generator)
    return stream


def frames_of(chunk: str) -> list[SSEEvent]:
    """Decode what one step of a stream generator wrote."""
    return [
        SSEEvent(event=frame.event, data=json.loads(frame.data))
        for frame in SSEParser().feed(chunk)
    ]


@pytest.fixture
def small_capture() -> Iterator[tuple[LogCaptureHandler, logging.Logger]]:
    """A capture handler with room for 5 records per client, on a logger of its own."""
    capture = LogCaptureHandler(max_queue=5)
    log = logging.getLogger(unique("test.small"))
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(capture)
    yield capture, log
    log.removeHandler(capture)


def test_overflowing_client_gets_a_dropped_count_and_others_lose_nothing(
    small_capture: tuple[LogCaptureHandler, logging.Logger],
):
    capture, log = small_capture
    slow = start_stream(capture)
    fast = start_stream(capture)
    assert frames_of(next(slow))[0]["event"] == "connection_open"
    assert frames_of(next(fast))[0]["event"] == "connection_open"

    fast_seen: list[SSEEvent] = []
    for index in range(12):
        log.info("record %d", index)
        fast_seen += frames_of(next(fast))  # the fast client keeps up, one record at a time
    slow_seen = frames_of(next(slow))  # the slow one wakes up late: 5 kept, 7 lost

    assert [ev["data"]["message"] for ev in fast_seen] == [f"record {i}" for i in range(12)]
    assert [ev["event"] for ev in fast_seen] == ["log"] * 12
    assert slow_seen[0] == {"event": "dropped", "data": {"dropped": 7}}
    assert [ev["data"]["message"] for ev in slow_seen[1:]] == [f"record {i}" for i in range(5)]

    log.info("record 12")
    assert frames_of(next(slow)) == frames_of(next(fast))  # the count is reported once
    slow.close()
    fast.close()
    assert capture.client_count == 0


def test_logging_never_waits_for_a_full_client_queue(
    small_capture: tuple[LogCaptureHandler, logging.Logger],
):
    capture, log = small_capture
    stuck = start_stream(capture)
    next(stuck)
    producer = threading.Thread(target=log_many, args=(log, 5000, "flood"))
    producer.start()
    producer.join(10)
    assert not producer.is_alive(), "logging blocked on a full client queue"

    capture.close_all_clients()
    tail = frames_of(next(stuck))
    stuck.close()

    # Closing makes room for its sentinel by dropping one more queued record.
    assert tail[0] == {"event": "dropped", "data": {"dropped": 5000 - 5 + 1}}
    assert [ev["event"] for ev in tail[1:]] == ["log"] * 4 + ["connection_close"]
    assert tail[-1]["data"] == {"reason": "shutdown"}


def test_client_connecting_after_shutdown_is_closed_at_once(
    small_capture: tuple[LogCaptureHandler, logging.Logger],
):
    capture, log = small_capture
    capture.close_all_clients()
    late = start_stream(capture)
    opened = frames_of(next(late))
    log.info("nobody should get this")
    closing = frames_of(next(late))

    assert [ev["event"] for ev in opened] == ["connection_open"]
    assert [ev["event"] for ev in closing] == ["connection_close"]
    with pytest.raises(StopIteration):
        next(late)
    assert capture.client_count == 0


def test_one_apps_shutdown_closes_only_its_own_log_clients():
    from backend.utils.log_capture import CLOSE, LogCaptureHandler

    capture = LogCaptureHandler(max_queue=5)
    app_a, app_b = object(), object()
    client_a = capture.register(owner=app_a)
    client_b = capture.register(owner=app_b)
    capture.close_clients_of(app_a)
    assert client_a.queue.get_nowait() is CLOSE
    assert client_b.queue.empty()
    late_a = capture.register(owner=app_a)
    assert late_a.queue.get_nowait() is CLOSE
    assert capture.register(owner=app_b).queue.empty()
