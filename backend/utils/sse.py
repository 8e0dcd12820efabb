"""Server-sent events: spec-compliant frames and the lifecycle events every stream uses."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from flask import Response

from backend.utils.errors import ServiceBusyException

logger = logging.getLogger(__name__)

CONNECTION_OPEN = "connection_open"
HEARTBEAT = "heartbeat"
CONNECTION_CLOSE = "connection_close"
# Not "error": a browser EventSource fires its own `error` event on connection failures, and
# listeners could not tell a server-sent error from a dropped connection.
STREAM_ERROR = "stream_error"
LAST_EVENT_ID_HEADER = "Last-Event-ID"
# Sent as `retry:` on every stream's first frame: how long a browser waits to reconnect.
RECONNECT_DELAY_MS = 3000


def utc_now_iso() -> str:
    """An ISO 8601 UTC stamp with milliseconds, e.g. 2026-01-02T03:04:05.678Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_sse_event(
    event: str,
    data: Any,
    correlation_id: str | None = None,
    test_id: str | None = None,
    event_id: str | None = None,
    retry_ms: int | None = None,
) -> str:
    """One SSE frame: `retry:`/`id:` when given, `event:`, one `data:` line per payload line,
    blank-line terminated.

    Dict payloads get `correlation_id` (and `test_id` when known) added unless present.
    """
    if "\n" in event or "\r" in event or not event:
        raise ValueError(f"SSE event name must be a non-empty single line, got {event!r}")
    head = ""
    if retry_ms is not None:
        head += f"retry: {int(retry_ms)}\n"
    if event_id is not None:
        if any(ch in event_id for ch in "\r\n\x00"):
            raise ValueError(f"SSE event id must be one line without NUL, got {event_id!r}")
        head += f"id: {event_id}\n"
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
    return f"{head}event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


def sse_response(frames: Iterator[str]) -> Response:
    """A streaming text/event-stream response that proxies must not buffer."""
    response = Response(frames, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response


class StreamLimitReached(ServiceBusyException):
    """Every SSE slot is taken: a further stream would take a thread that other requests
    (health probes among them) need."""

    default_code = "TOO_MANY_STREAMS"


class ActiveStreams:
    """Counts open SSE responses so shutdown can wait for their close frames to go out, and
    caps them (`limit`) below the server's threads."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self._open: dict[int, str] = {}
        self._next = 0
        self._cond = threading.Condition()
        self._slots = 0

    @property
    def count(self) -> int:
        with self._cond:
            return len(self._open)

    def open_streams(self) -> list[str]:
        with self._cond:
            return sorted(self._open.values())

    def wait_all_closed(self, timeout: float) -> bool:
        with self._cond:
            done = self._cond.wait_for(lambda: not self._open, timeout=timeout)
            if not done:
                logger.warning(
                    "SSE streams still open at shutdown: %s", sorted(self._open.values())
                )
            return done

    def open(self, frames: Iterator[str], label: str = "stream") -> Iterator[str]:
        """Take a slot now (503 TOO_MANY_STREAMS when none is free); the slot is released when
        the response ends or is closed, even if it never started."""
        with self._cond:
            if self.limit is not None and self._slots >= self.limit:
                raise StreamLimitReached(
                    f"All {self.limit} event-stream slots are in use (SSE_STREAM_LIMIT); "
                    "close a stream or retry later",
                    retry_after=5,
                    details={"limit": self.limit},
                )
            self._slots += 1
        return _SlotStream(self.track(frames, label), self._release_slot)

    def _release_slot(self) -> None:
        with self._cond:
            self._slots -= 1

    @property
    def slots_in_use(self) -> int:
        with self._cond:
            return self._slots

    def track(self, frames: Iterator[str], label: str = "stream") -> Iterator[str]:
        """Wrap a frame generator so it is counted (under `label`) while it runs."""
        with self._cond:
            key = self._next
            self._next += 1
            self._open[key] = label
        try:
            yield from frames
        finally:
            with self._cond:
                del self._open[key]
                self._cond.notify_all()


class _SlotStream:
    """An SSE body that gives its slot back exactly once: at its end, or when the server
    closes it (a client that left, possibly before the first frame)."""

    def __init__(self, frames: Iterator[str], release: Callable[[], None]) -> None:
        self._frames = frames
        self._release: Callable[[], None] | None = release

    def __iter__(self) -> _SlotStream:
        return self

    def __next__(self) -> str:
        try:
            return next(self._frames)
        except BaseException:
            self._give_back()
            raise

    def close(self) -> None:
        try:
            close = getattr(self._frames, "close", None)
            if close is not None:
                close()
        finally:
            self._give_back()

    def _give_back(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()
