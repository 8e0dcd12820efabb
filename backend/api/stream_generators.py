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
    format_sse_event,
    utc_now_iso,
)

# Most log frames sent in one write when records arrive in bursts.
_LOG_BATCH = 500


def _framer(correlation_id: str | None, test_id: str | None) -> Callable[[str, Any], str]:
    def frame(event: str, data: Any) -> str:
        return format_sse_event(event, data, correlation_id=correlation_id, test_id=test_id)

    return frame


def task_stream(
    tasks: TaskService,
    task_id: str,
    idle_interval: float,
    correlation_id: str | None,
    test_id: str | None,
) -> Iterator[str]:
    frame = _framer(correlation_id, test_id)
    yield frame(CONNECTION_OPEN, {"status": "connected", "task_id": task_id})
    subscription = tasks.subscribe(task_id)
    if subscription is None:
        yield frame("error", {"error": f"Task {task_id} not found", "code": "TASK_NOT_FOUND"})
        yield frame(CONNECTION_CLOSE, {"reason": "task_not_found"})
        return
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
            yield frame("task_event", item)
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
    frame = _framer(correlation_id, test_id)
    yield frame(CONNECTION_OPEN, {"status": "connected"})
    try:
        info = read_version()
    except Exception as exc:
        yield frame("error", {"error": f"Could not read version data: {exc}"})
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
) -> Iterator[str]:
    frame = _framer(correlation_id, test_id)
    client = capture.register(owner)
    try:
        yield frame(CONNECTION_OPEN, {"status": "connected"})
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
                # Log records carry their own ids; the frame must not overwrite them.
                frames.append(format_sse_event("log", entry))
            yield "".join(frames)
    finally:
        capture.unregister(client)
