"""SSE frame generators. They get plain data (ids, services), never the request context."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from typing import Any

from backend.services.task_service import CLOSE as TASK_CLOSE
from backend.services.task_service import FINAL_EVENTS, TaskService
from backend.utils.log_capture import CLOSE as LOG_CLOSE
from backend.utils.log_capture import LogCaptureHandler
from backend.utils.shutdown import ShutdownCoordinator
from backend.utils.sse import (
    CONNECTION_CLOSE,
    CONNECTION_OPEN,
    HEARTBEAT,
    RECONNECT_DELAY_MS,
    STREAM_ERROR,
    format_sse_event,
    utc_now_iso,
)

# Most log frames sent in one write when records arrive in bursts.
_LOG_BATCH = 500


# The id of the stream_error frame for an unknown task: a browser reconnecting with it gets 404.
UNKNOWN_TASK_EVENT_ID = "0"


class Framer:
    """Frames of one stream, stamped with its request's ids."""

    def __init__(self, correlation_id: str | None, test_id: str | None) -> None:
        self.correlation_id = correlation_id
        self.test_id = test_id

    def __call__(self, event: str, data: Any, event_id: str | None = None) -> str:
        return format_sse_event(event, data, self.correlation_id, self.test_id, event_id=event_id)

    def opening(self, data: dict[str, Any]) -> str:
        """connection_open, with the reconnect delay every stream announces."""
        return format_sse_event(
            CONNECTION_OPEN,
            data,
            self.correlation_id,
            self.test_id,
            retry_ms=RECONNECT_DELAY_MS,
        )


def task_stream(
    tasks: TaskService,
    task_id: str,
    idle_interval: float,
    correlation_id: str | None,
    test_id: str | None,
    after: int = 0,
) -> Iterator[str]:
    """Task events numbered from 1 (`id:`); a reconnect passes `after` to continue from there."""
    frame = Framer(correlation_id, test_id)
    yield frame.opening({"status": "connected", "task_id": task_id})
    subscription = tasks.subscribe(task_id, after=after)
    if subscription is None:
        yield frame(
            STREAM_ERROR,
            {"error": f"Task {task_id} not found", "code": "TASK_NOT_FOUND"},
            UNKNOWN_TASK_EVENT_ID,
        )
        yield frame(CONNECTION_CLOSE, {"reason": "task_not_found"})
        return
    number = after
    try:
        while True:
            try:
                item = subscription.get(timeout=idle_interval)
            except queue.Empty:
                yield frame(HEARTBEAT, {"timestamp": utc_now_iso()})
                continue
            if item is TASK_CLOSE:
                yield frame(CONNECTION_CLOSE, {"reason": "shutdown"})
                return
            number += 1
            yield frame("task_event", item, str(number))
            if item["event_type"] in FINAL_EVENTS:
                yield frame(CONNECTION_CLOSE, {"reason": item["event_type"]})
                return
    finally:
        tasks.unsubscribe(task_id, subscription)


def version_stream(
    read_version: Callable[[], dict[str, Any]],
    coordinator: ShutdownCoordinator,
    heartbeat_interval: float,
    correlation_id: str | None,
    test_id: str | None,
) -> Iterator[str]:
    frame = Framer(correlation_id, test_id)
    yield frame.opening({"status": "connected"})
    try:
        info = read_version()
    except Exception as exc:
        yield frame(STREAM_ERROR, {"error": f"Could not read version data: {exc}"})
        yield frame(CONNECTION_CLOSE, {"reason": "error"})
        return
    yield frame("version", info)
    next_beat = time.perf_counter() + heartbeat_interval
    while True:
        if coordinator.wait_for_shutdown(max(0.0, next_beat - time.perf_counter())):
            yield frame(CONNECTION_CLOSE, {"reason": "shutdown"})
            return
        next_beat += heartbeat_interval
        yield frame(HEARTBEAT, {"timestamp": utc_now_iso()})


def log_stream(
    capture: LogCaptureHandler,
    heartbeat_interval: float,
    correlation_id: str | None,
    test_id: str | None,
    owner: object | None = None,
    last_event_id: str | None = None,
) -> Iterator[str]:
    """Records as `log` events with `id: <epoch>-<seq>`; a client that reconnects with
    Last-Event-ID first gets the buffered records it missed (a `dropped` count for those the
    buffer no longer holds)."""
    frame = Framer(correlation_id, test_id)
    client = capture.register(owner, last_event_id)
    try:
        opening = [frame.opening({"status": "connected"})]
        if client.evicted:
            opening.append(frame("dropped", {"dropped": client.evicted}))
        opening.extend(_log_frame(capture, entry) for entry in client.backlog)
        client.backlog = []
        yield "".join(opening)
        next_beat = time.perf_counter() + heartbeat_interval
        while True:
            try:
                item = client.queue.get(timeout=max(0.0, next_beat - time.perf_counter()))
            except queue.Empty:
                next_beat = time.perf_counter() + heartbeat_interval
                yield frame(HEARTBEAT, {"timestamp": utc_now_iso()})
                continue
            # Drain what is already queued so bursts go out in one write.
            items = [item]
            while len(items) < _LOG_BATCH and items[-1] is not LOG_CLOSE:
                try:
                    items.append(client.queue.get_nowait())
                except queue.Empty:
                    break
            frames = []
            lost = client.take_dropped()
            if lost:
                frames.append(frame("dropped", {"dropped": lost}))
            for entry in items:
                if entry is LOG_CLOSE:
                    frames.append(frame(CONNECTION_CLOSE, {"reason": "shutdown"}))
                    yield "".join(frames)
                    return
                frames.append(_log_frame(capture, entry))
            yield "".join(frames)
    finally:
        capture.unregister(client)


def _log_frame(capture: LogCaptureHandler, entry: tuple[int, dict[str, Any]]) -> str:
    seq, record = entry
    # Log records carry their own ids; the frame must not overwrite them.
    return format_sse_event("log", record, event_id=capture.event_id(seq))
