"""Server-sent events: spec-compliant frames and the lifecycle events every stream uses."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from flask import Response

CONNECTION_OPEN = "connection_open"
HEARTBEAT = "heartbeat"
CONNECTION_CLOSE = "connection_close"


def utc_now_iso() -> str:
    """An ISO 8601 UTC stamp with milliseconds, e.g. 2026-01-02T03:04:05.678Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_sse_event(
    event: str,
    data: Any,
    correlation_id: str | None = None,
    test_id: str | None = None,
) -> str:
    """One SSE frame: `event:` line, one `data:` line per payload line, blank-line terminated.

    Dict payloads get `correlation_id` (and `test_id` when known) added unless present.
    """
    if "\n" in event or "\r" in event or not event:
        raise ValueError(f"SSE event name must be a non-empty single line, got {event!r}")
    if isinstance(data, dict):
        payload = dict(data)
        if correlation_id is not None:
            payload.setdefault("correlation_id", correlation_id)
        if test_id is not None:
            payload.setdefault("test_id", test_id)
        text = json.dumps(payload, default=str)
    elif isinstance(data, str):
        text = data
    else:
        text = json.dumps(data, default=str)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return f"event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


def sse_response(frames: Iterator[str]) -> Response:
    """A streaming text/event-stream response that proxies must not buffer."""
    response = Response(frames, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response


class ActiveStreams:
    """Counts open SSE responses so shutdown can wait for their close frames to go out."""

    def __init__(self) -> None:
        self._count = 0
        self._cond = threading.Condition()

    def opened(self) -> None:
        with self._cond:
            self._count += 1

    def closed(self) -> None:
        with self._cond:
            self._count -= 1
            self._cond.notify_all()

    @property
    def count(self) -> int:
        with self._cond:
            return self._count

    def wait_all_closed(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._count == 0, timeout=timeout)

    def track(self, frames: Iterator[str]) -> Iterator[str]:
        """Wrap a frame generator so it is counted while it runs."""
        self.opened()
        try:
            yield from frames
        finally:
            self.closed()
