"""Live log capture for the testing log stream: one handler, one bounded queue per client."""

from __future__ import annotations

import json
import logging
import queue
import secrets
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

# Attributes every LogRecord has; anything else on a record is "extra".
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "correlation_id", "test_id", "taskName"}
)

CLOSE = object()  # sentinel pushed to every client queue on shutdown

# Records kept for clients that reconnect with Last-Event-ID (the harvester after a dropped
# connection): a bounded ring, so a reconnect within it loses nothing.
RESUME_BUFFER = 10_000

Entry = tuple[int, dict[str, Any]]  # (sequence number, record as a dict)


def record_to_dict(record: logging.LogRecord) -> dict[str, Any]:
    """The structured form of a log record sent to clients and written to artifacts.

    On every record a worker logs (two per command): the extras are the keys a standard
    record lacks (one set difference in C), the timestamp's seconds are formatted once per
    second (`utc_stamp`)."""
    return {
        "timestamp": utc_stamp(record.created),
        "level": record.levelname,
        "logger": record.name,
        "message": record.getMessage(),
        "correlation_id": getattr(record, "correlation_id", None),
        "test_id": getattr(record, "test_id", None),
        "extra": record_extras(record),
    }


def record_extras(record: logging.LogRecord) -> dict[str, Any]:
    """The record's `extra` fields (JSON-safe), and its formatted exception if it has one."""
    attributes = record.__dict__
    extra_keys = attributes.keys() - _STANDARD_ATTRS
    extra: dict[str, Any] = {}
    if extra_keys:
        # Extras are set after the standard attributes: walk from the end, in their order.
        found = []
        for key in reversed(attributes):
            if key in extra_keys:
                found.append(key)
                if len(found) == len(extra_keys):
                    break
        extra = {
            key: _json_safe(attributes[key]) for key in reversed(found) if not key.startswith("_")
        }
    if record.exc_info and record.exc_info[0] is not None:
        extra["exception"] = logging.Formatter().formatException(record.exc_info)
    return extra


_second: tuple[int, str] = (-1, "")  # (epoch second, its ISO text): one tuple, swapped whole


def utc_stamp(created: float) -> str:
    """`created` (epoch seconds) as ISO 8601 UTC with milliseconds: 2025-01-02T03:04:05.678Z."""
    global _second
    second = int(created)
    micros = round((created - second) * 1e6)  # as datetime.fromtimestamp rounds
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    cached = _second
    if cached[0] != second:
        text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        cached = _second = (second, text)
    return f"{cached[1]}.{micros // 1000:03d}Z"


_PLAIN = (str, int, float, bool, type(None))


def _json_safe(value: Any) -> Any:
    if isinstance(value, _PLAIN):  # the common case, without a trial serialization
        return value
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


@dataclass(eq=False)
class LogClient:
    """One connected stream client: its queue and how many records it lost."""

    max_queue: int
    owner: object | None = None  # the app (its shutdown coordinator) that serves this client
    queue: queue.Queue[Any] = field(init=False)
    dropped: int = 0
    # On a resume: the buffered records after the client's last id, and how many it asked
    # for that the ring no longer holds.
    backlog: list[Entry] = field(default_factory=list)
    evicted: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.queue = queue.Queue(maxsize=self.max_queue)

    def offer(self, item: Any) -> None:
        try:
            self.queue.put_nowait(item)
        except queue.Full:
            with self._lock:
                self.dropped += 1

    def take_dropped(self) -> int:
        with self._lock:
            count, self.dropped = self.dropped, 0
        return count

    def close(self) -> None:
        # Make room for the sentinel even when the queue is full: closing must always land.
        while True:
            try:
                self.queue.put_nowait(CLOSE)
                return
            except queue.Full:
                try:
                    self.queue.get_nowait()
                    with self._lock:
                        self.dropped += 1
                except queue.Empty:
                    pass


class LogCaptureHandler(logging.Handler):
    """Fans records out to connected clients; keeps the last RESUME_BUFFER for resumes.

    Every record gets an event id `<epoch>-<seq>`; the epoch is new for each handler (each
    backend process), so an id from before a restart never matches and its loss is not hidden.
    """

    _instance: ClassVar[LogCaptureHandler | None] = None
    _instance_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, max_queue: int = 10_000, resume_buffer: int = RESUME_BUFFER) -> None:
        super().__init__(level=logging.INFO)
        self.max_queue = max_queue
        self.epoch = secrets.token_hex(4)
        self._seq = 0
        self._ring: deque[Entry] = deque(maxlen=resume_buffer)
        self._clients: set[LogClient] = set()
        self._clients_lock = threading.Lock()
        self._closed = False
        # Apps in one process share this handler; each closes only its own clients.
        self._closed_owners: set[int] = set()

    @classmethod
    def get_instance(cls) -> LogCaptureHandler:
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def event_id(self, seq: int) -> str:
        return f"{self.epoch}-{seq}"

    def _resume_point(self, last_event_id: str | None) -> int | None:
        """The sequence number after which a resuming client continues, or None."""
        if not last_event_id:
            return None
        epoch, _, raw = last_event_id.strip().rpartition("-")
        if epoch != self.epoch or not raw.isdigit():
            return None  # another process's id (a restart): nothing to resume from
        return int(raw)

    def register(self, owner: object | None = None, last_event_id: str | None = None) -> LogClient:
        """A new client; with the id of the last event it saw, it first gets what followed."""
        client = LogClient(self.max_queue, owner)
        after = self._resume_point(last_event_id)
        with self._clients_lock:
            if self._closed or (owner is not None and id(owner) in self._closed_owners):
                client.close()
                return client
            if after is not None:
                client.backlog = [entry for entry in self._ring if entry[0] > after]
                oldest = client.backlog[0][0] if client.backlog else self._seq + 1
                client.evicted = max(0, oldest - after - 1)
            self._clients.add(client)
        return client

    def unregister(self, client: LogClient) -> None:
        with self._clients_lock:
            self._clients.discard(client)

    @property
    def client_count(self) -> int:
        with self._clients_lock:
            return len(self._clients)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            entry = record_to_dict(record)
        except Exception:
            self.handleError(record)
            return
        # Numbered, kept and fanned out under one lock: a client registering meanwhile gets
        # each record exactly once (from the ring or from its queue).
        with self._clients_lock:
            self._seq += 1
            item = (self._seq, entry)
            self._ring.append(item)
            clients = list(self._clients)
        for client in clients:
            client.offer(item)

    def close_all_clients(self) -> None:
        """Shutdown: every client gets its connection_close; new clients are closed at once."""
        with self._clients_lock:
            self._closed = True
            clients = list(self._clients)
        for client in clients:
            client.close()

    def close_clients_of(self, owner: object) -> None:
        """One app's shutdown: its clients get connection_close, later ones are closed at once."""
        with self._clients_lock:
            self._closed_owners.add(id(owner))
            clients = [c for c in self._clients if c.owner is owner]
        for client in clients:
            client.close()
