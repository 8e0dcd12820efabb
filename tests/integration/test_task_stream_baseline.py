"""Baseline contract of GET /api/tasks/<task_id>/stream, seen by a real SSE client.

The sequence: connection_open, task_event (progress_update..., then task_completed or
task_failed), connection_close with the final event type as reason, then the response ends.
Heartbeats fill idle gaps. Unknown ids get connection_open, stream_error, connection_close
(HTTP 200) on a first connection.

Changed on purpose (issue 12), so a browser EventSource stops instead of replaying forever:
- the failure event was named `error` (it collides with EventSource's own); now `stream_error`;
- task events carry `id: <n>` (1-based), and the first frame sets `retry:`;
- a reconnect (Last-Event-ID) continues after event n; to a finished task with nothing more
  to send it is answered 204, to an unknown task 404 (the error shape).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
import requests

from backend.utils.sse import RECONNECT_DELAY_MS, STREAM_ERROR
from tests.integration.conftest import (
    SSEClientFactory,
    SSEServer,
    StartTask,
    arrival_times,
    assert_ended_after_close,
    assert_iso_utc,
    gaps,
    names,
    wait_until_done,
    without_heartbeats,
)

pytestmark = [pytest.mark.integration, pytest.mark.sse]

TASK_EVENT_FIELDS = {"event_type", "task_id", "timestamp", "data", "correlation_id"}
# The factories send the test's X-Test-Id (for its log slice); frames then carry test_id.
SENT_ID_FIELDS = {"test_id"}


def stream_path(task_id: str) -> str:
    return f"/api/tasks/{task_id}/stream"


def task_events(events: list[Any]) -> list[dict[str, Any]]:
    return [ev["data"] for ev in events if ev["event"] == "task_event"]


def unique_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# -- lifecycle and order ----------------------------------------------------------------------


@pytest.mark.parametrize("known", [True, False], ids=["known-task", "unknown-task"])
def test_http_200_event_stream_no_cache(
    sse_client_factory: SSEClientFactory, start_task: StartTask, known: bool
) -> None:
    task_id = start_task(steps=1, step_delay_ms=0) if known else uuid.uuid4().hex
    client = sse_client_factory(stream_path(task_id))

    assert client.status_code == 200
    assert client.response_headers["Content-Type"].startswith("text/event-stream")
    assert client.response_headers["Cache-Control"] == "no-cache"
    client.collect_until_close()


def test_completed_task_order_then_close_and_end(
    sse_client_factory: SSEClientFactory, start_task: StartTask
) -> None:
    task_id = start_task(steps=3, step_delay_ms=50)
    client = sse_client_factory(stream_path(task_id))

    events = client.collect_until_close()

    assert names(without_heartbeats(events)) == [
        "connection_open",
        "task_event",
        "task_event",
        "task_event",
        "task_event",
        "connection_close",
    ]
    assert [ev["event_type"] for ev in task_events(events)] == [
        "progress_update",
        "progress_update",
        "progress_update",
        "task_completed",
    ]
    assert events[-1]["data"]["reason"] == "task_completed"
    assert_ended_after_close(client, events)


def test_connection_open_arrives_first_and_at_once(
    sse_server: SSEServer, sse_client_factory: SSEClientFactory, start_task: StartTask
) -> None:
    # The only step waits two idle intervals: nothing but the open frame is due before it.
    task_id = start_task(steps=1, step_delay_ms=int(2000 * sse_server.idle_interval))
    client = sse_client_factory(stream_path(task_id))

    first = client.next_event(timeout=sse_server.idle_interval / 2)

    assert first["event"] == "connection_open"
    assert first["data"]["status"] == "connected"
    assert first["data"]["task_id"] == task_id
    client.collect_until_close()


def test_task_event_data_format(
    sse_client_factory: SSEClientFactory, start_task: StartTask
) -> None:
    steps = 3
    task_id = start_task(steps=steps, step_delay_ms=20)
    client = sse_client_factory(stream_path(task_id))

    events = client.collect_until_close()

    frames = task_events(events)
    assert len(frames) == steps + 1
    for frame in frames:
        assert set(frame) == TASK_EVENT_FIELDS | SENT_ID_FIELDS, frame
        assert frame["task_id"] == task_id
        assert isinstance(frame["data"], dict)
        assert isinstance(frame["correlation_id"], str)
    stamps = [assert_iso_utc(frame["timestamp"]) for frame in frames]
    assert stamps == sorted(stamps), "task events are not in time order"
    for step, frame in enumerate(frames[:-1], start=1):
        assert frame["event_type"] == "progress_update"
        assert frame["data"] == {
            "text": f"Step {step} of {steps}",
            "progress": pytest.approx(step / steps, abs=1e-4),
            "step": step,
            "total": steps,
        }
        assert isinstance(frame["data"]["progress"], float)
    assert frames[-1]["event_type"] == "task_completed"
    assert frames[-1]["data"] == {"result": {"steps": steps}}


def test_failed_task_sends_task_failed_with_error_then_closes(
    sse_client_factory: SSEClientFactory, start_task: StartTask
) -> None:
    task_id = start_task(steps=3, step_delay_ms=20, fail_at_step=2)
    client = sse_client_factory(stream_path(task_id))

    events = client.collect_until_close()

    assert names(without_heartbeats(events)) == [
        "connection_open",
        "task_event",
        "task_event",
        "connection_close",
    ]
    progress, failed = task_events(events)
    assert progress["event_type"] == "progress_update"
    assert progress["data"]["step"] == 1
    assert failed["event_type"] == "task_failed"
    assert set(failed) == TASK_EVENT_FIELDS | SENT_ID_FIELDS
    assert failed["task_id"] == task_id
    assert_iso_utc(failed["timestamp"])
    assert failed["data"] == {
        "error": "Scripted failure at step 2",
        "error_type": "ScriptedTaskFailure",
    }
    assert events[-1]["data"]["reason"] == "task_failed"
    assert_ended_after_close(client, events)


def test_unknown_task_sends_error_and_closes(sse_client_factory: SSEClientFactory) -> None:
    task_id = uuid.uuid4().hex
    client = sse_client_factory(stream_path(task_id))

    events = client.collect_until_close()

    assert client.status_code == 200
    assert names(events) == ["connection_open", STREAM_ERROR, "connection_close"]
    error = events[1]["data"]
    assert error["code"] == "TASK_NOT_FOUND"
    assert isinstance(error["error"], str)
    assert task_id in error["error"]
    assert events[-1]["data"]["reason"] == "task_not_found"
    assert_ended_after_close(client, events)


# -- heartbeats, fan-out, late subscribers ----------------------------------------------------


def test_idle_stream_sends_heartbeats_within_twice_the_idle_interval(
    sse_server: SSEServer, sse_client_factory: SSEClientFactory, start_task: StartTask
) -> None:
    idle = sse_server.idle_interval
    task_id = start_task(steps=1, step_delay_ms=int(3000 * idle))
    client = sse_client_factory(stream_path(task_id))

    events = client.collect_until_close(timeout=3 * idle + sse_server.client_timeout)

    first_task_event = names(events).index("task_event")
    idle_part = events[:first_task_event]
    assert names(idle_part).count("heartbeat") >= 2, names(events)
    assert names(events[first_task_event:]).count("heartbeat") == 0, names(events)
    for beat in idle_part[1:]:
        assert set(beat["data"]) == {"timestamp", "correlation_id"} | SENT_ID_FIELDS
        assert_iso_utc(beat["data"]["timestamp"])
    opened = arrival_times(client, "connection_open")
    beats = arrival_times(client, "heartbeat")
    for gap in gaps(opened + beats):
        assert 0.5 * idle < gap <= 2 * idle, (
            f"heartbeat gaps {gaps(opened + beats)} not within (0.5, 2] x {idle}s"
        )
    assert events[-1]["data"]["reason"] == "task_completed"
    assert_ended_after_close(client, events)


def test_several_clients_get_the_same_events_in_the_same_order(
    sse_client_factory: SSEClientFactory, start_task: StartTask
) -> None:
    task_id = start_task(steps=4, step_delay_ms=100)
    clients = [sse_client_factory(stream_path(task_id)) for _ in range(3)]

    streams = [client.collect_until_close() for client in clients]

    # Each stream has its own correlation id; everything else must be identical.
    seen = [
        [{k: v for k, v in frame.items() if k != "correlation_id"} for frame in task_events(s)]
        for s in streams
    ]
    assert len(seen[0]) == 5
    assert seen[1] == seen[0]
    assert seen[2] == seen[0]
    for client, events in zip(clients, streams, strict=True):
        assert names(without_heartbeats(events)) == names(without_heartbeats(streams[0]))
        assert_ended_after_close(client, events)


def test_late_subscriber_still_gets_the_final_event(
    sse_server: SSEServer, sse_client_factory: SSEClientFactory, start_task: StartTask
) -> None:
    task_id = start_task(steps=2, step_delay_ms=0)
    status = wait_until_done(sse_server, task_id, sse_server.client_timeout)
    assert status["last_event"]["event_type"] == "task_completed"

    client = sse_client_factory(stream_path(task_id))
    events = client.collect_until_close()

    assert names(events) == [
        "connection_open",
        "task_event",
        "task_event",
        "task_event",
        "connection_close",
    ]
    final = task_events(events)[-1]
    assert final["event_type"] == "task_completed"
    assert final["timestamp"] == status["last_event"]["timestamp"]
    assert events[-1]["data"]["reason"] == "task_completed"
    assert_ended_after_close(client, events)


# -- correlation and test ids -----------------------------------------------------------------


def test_every_event_carries_the_sent_request_id(
    sse_server: SSEServer, sse_client_factory: SSEClientFactory, start_task: StartTask
) -> None:
    request_id = unique_id("sse-task")
    # Started under another id: the stream's frames carry the stream request's id.
    task_id = start_task(
        steps=1,
        step_delay_ms=int(1500 * sse_server.idle_interval),
        headers={"X-Request-Id": unique_id("starter")},
        send_test_id=False,
    )
    client = sse_client_factory(
        stream_path(task_id), headers={"X-Request-Id": request_id}, send_test_id=False
    )

    events = client.collect_until_close()

    assert client.response_headers["X-Request-Id"] == request_id
    assert {"connection_open", "heartbeat", "task_event", "connection_close"} <= set(names(events))
    for event in events:
        assert event["data"]["correlation_id"] == request_id, event
        assert "test_id" not in event["data"], event


def test_generated_request_id_is_echoed_and_in_every_event(
    sse_client_factory: SSEClientFactory, start_task: StartTask
) -> None:
    task_id = start_task(steps=2, step_delay_ms=0)
    client = sse_client_factory(stream_path(task_id))

    events = client.collect_until_close()

    generated = client.response_headers.get("X-Request-Id")
    assert generated, "no X-Request-Id response header"
    for event in events:
        assert event["data"]["correlation_id"] == generated, event


@pytest.mark.parametrize("known", [True, False], ids=["known-task", "unknown-task"])
def test_every_event_carries_the_sent_test_id(
    sse_client_factory: SSEClientFactory, start_task: StartTask, known: bool
) -> None:
    test_id = unique_id("test")
    request_id = unique_id("sse-task")
    task_id = start_task(steps=2, step_delay_ms=0) if known else uuid.uuid4().hex
    client = sse_client_factory(
        stream_path(task_id), headers={"X-Test-Id": test_id, "X-Request-Id": request_id}
    )

    events = client.collect_until_close()

    assert client.response_headers["X-Test-Id"] == test_id
    assert len(events) >= 3
    for event in events:
        assert event["data"]["test_id"] == test_id, event
        assert event["data"]["correlation_id"] == request_id, event


# -- POST /api/testing/tasks ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"steps": 0, "step_delay_ms": 0}, "steps"),
        ({"steps": 3, "step_delay_ms": -1}, "step_delay_ms"),
        ({"steps": 2, "step_delay_ms": 0, "fail_at_step": 3}, None),
        ({"steps": "3", "step_delay_ms": 0}, "steps"),
    ],
    ids=["zero-steps", "negative-delay", "fail-after-last-step", "string-steps"],
)
def test_scripted_task_rejects_bad_values(
    sse_server: SSEServer, body: dict[str, Any], field: str | None
) -> None:
    response = requests.post(f"{sse_server.url}/api/testing/tasks", json=body, timeout=10)

    assert response.status_code == 400, response.text
    error = response.json()
    assert error["code"] == "VALIDATION_ERROR"
    assert isinstance(error["error"], str)
    assert error["error"]
    if field is not None:
        assert error["details"]["field"] == field


def test_scripted_task_accepted_returns_task_id(sse_server: SSEServer) -> None:
    body = {"steps": 1, "step_delay_ms": 0, "fail_at_step": None}
    response = requests.post(f"{sse_server.url}/api/testing/tasks", json=body, timeout=10)

    assert response.status_code == 202, response.text
    task_id = response.json()["task_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", task_id)


# -- reconnects: ids, retry, and answers that stop a browser ---------------------------------


def test_task_events_are_numbered_and_the_first_frame_sets_retry(
    sse_server: SSEServer, start_task: StartTask
) -> None:
    task_id = start_task(steps=2, step_delay_ms=0)
    wait_until_done(sse_server, task_id, sse_server.client_timeout)
    response = requests.get(f"{sse_server.url}{stream_path(task_id)}", timeout=10)
    blocks = [block for block in response.text.split("\n\n") if block]
    assert blocks[0].startswith(f"retry: {RECONNECT_DELAY_MS}\n")
    ids = [
        line.removeprefix("id: ")
        for block in blocks
        for line in block.splitlines()
        if line.startswith("id: ")
    ]
    assert ids == ["1", "2", "3"]


def test_reconnect_continues_after_the_last_event_id(
    sse_server: SSEServer, start_task: StartTask
) -> None:
    task_id = start_task(steps=3, step_delay_ms=0)
    wait_until_done(sse_server, task_id, sse_server.client_timeout)
    response = requests.get(
        f"{sse_server.url}{stream_path(task_id)}", headers={"Last-Event-ID": "2"}, timeout=10
    )
    assert response.status_code == 200
    assert "id: 3\n" in response.text and "id: 4\n" in response.text
    assert "id: 2\n" not in response.text and "id: 1\n" not in response.text


def test_reconnect_to_a_finished_task_is_204(sse_server: SSEServer, start_task: StartTask) -> None:
    task_id = start_task(steps=1, step_delay_ms=0)
    wait_until_done(sse_server, task_id, sse_server.client_timeout)
    response = requests.get(
        f"{sse_server.url}{stream_path(task_id)}", headers={"Last-Event-ID": "2"}, timeout=10
    )
    assert response.status_code == 204
    assert response.content == b""


def test_reconnect_to_an_unknown_task_is_404(sse_server: SSEServer) -> None:
    task_id = uuid.uuid4().hex
    response = requests.get(
        f"{sse_server.url}{stream_path(task_id)}", headers={"Last-Event-ID": "0"}, timeout=10
    )
    assert response.status_code == 404
    body = response.json()
    assert set(body) == {"error", "code", "details", "correlationId"}
    assert task_id in body["error"]
