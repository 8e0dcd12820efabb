"""Harvests logs while a run goes on: SSE log streams and process output, one file per source.

Each source runs in its own daemon thread and writes to `<logs_dir>/<name>.jsonl` (SSE) or
`<logs_dir>/<name>.log` (streams), one flushed line at a time, so files can be tailed live.
Every line passes through `redact` before it reaches the disk or `tail()`. A full disk never
stops a source (it must keep draining its child): lines that cannot be written are counted,
and recorded in the run's `WriteLosses` when one is given.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

from orchestrator.artifacts.layout import WriteLosses, error_reason
from orchestrator.contract import (
    EVENT_CONNECTION_CLOSE,
    EVENT_CONNECTION_OPEN,
    EVENT_DROPPED,
    EVENT_LOG,
    LAST_EVENT_ID_HEADER,
    RECORD_RUN_ID,
)
from orchestrator.sse_client import SSEClient, SSEEvent, SSEStreamClosed, SSETimeout

logger = logging.getLogger(__name__)

_TAIL_KEEP = 1000  # lines remembered per source for tail()


def _identity(text: str) -> str:
    return text


def _utc_iso(moment: datetime | None = None) -> str:
    moment = moment or datetime.now(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _redact_values(value: Any, redact: Callable[[str], str]) -> Any:
    """Redact every string inside a JSON value (JSON escaping could hide a secret otherwise)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): _redact_values(v, redact) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_values(v, redact) for v in value]
    return value


class _Sink:
    """One output file of this run: thread-safe, flushed per line, redacted, remembers its
    last lines. JSON records are stamped with the run id (`run_id`)."""

    def __init__(
        self,
        path: Path,
        redact: Callable[[str], str],
        run_id: str | None,
        losses: WriteLosses | None = None,
    ) -> None:
        self.path = path
        self._redact = redact
        self._run_id = run_id
        self._losses = losses
        self._lock = threading.Lock()
        self._recent: deque[str] = deque(maxlen=_TAIL_KEEP)
        self._closed = False
        self.write_error: str | None = None
        self._why = ""  # the error, as WriteLosses records it
        self.dropped = 0
        self._file: IO[str] | None = None
        try:
            # "w": a file holds one run's lines only, never an earlier run's.
            self._file = path.open("w", encoding="utf-8")
        except OSError as exc:
            self._lost(exc)

    def write(self, line: str) -> None:
        """Never raises for a full or broken disk: the source must keep draining its child.
        After a write error the file keeps what it had; later lines are only counted."""
        safe = self._redact(line)
        with self._lock:
            if self._closed:
                raise RuntimeError(f"log file {self.path} is closed")
            self._recent.append(safe)
            if self._file is None or self.write_error is not None:
                self._drop()
                return
            try:
                self._file.write(safe + "\n")
                self._file.flush()
            except OSError as exc:
                self._lost(exc)
                self._drop()

    def _lost(self, exc: OSError) -> None:
        """The first write error: later lines are only counted."""
        self.write_error = f"{type(exc).__name__}: {exc}"
        self._why = error_reason(exc)
        logger.warning(
            "Log file %s: %s; its later lines are dropped (the service keeps running)",
            self.path,
            self.write_error,
        )

    def _drop(self) -> None:
        self.dropped += 1
        if self._losses is not None:
            self._losses.record(self.path, self._why)

    def write_json(self, record: Any) -> None:
        redacted = _redact_values(record, self._redact)
        if self._run_id is not None and isinstance(redacted, dict):
            redacted.setdefault(RECORD_RUN_ID, self._run_id)
        self.write(json.dumps(redacted, ensure_ascii=False, default=str))

    def write_line(self, line: str) -> None:
        """A raw output line; one holding a JSON object is stamped like a record."""
        if self._run_id is not None and line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if isinstance(record, dict):
                self.write_json(record)
                return
        self.write(line)

    def tail(self, n: int) -> list[str]:
        with self._lock:
            return list(self._recent)[-n:] if n > 0 else []

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._file is not None:
                try:
                    if self.write_error is not None and self.dropped:
                        marker = {
                            "marker": "dropped",
                            "count": self.dropped,
                            "reason": self.write_error,
                        }
                        self._file.write(json.dumps(marker) + "\n")
                    self._file.close()
                except OSError:
                    pass  # the disk is still full: the warning already said so
                self._file = None


@dataclass(eq=False)
class _SseSource:
    """The state of one followed SSE stream."""

    name: str
    url: str
    headers: dict[str, str]
    sink: _Sink
    last_seen: datetime = field(default_factory=lambda: datetime.now(UTC))
    client: SSEClient | None = None
    gap_reason: str | None = None  # set while disconnected
    gap_from: datetime | None = None
    gap_attempts: int = 0
    last_event_id: str = ""  # sent as Last-Event-ID on a reconnect
    resuming_from: str | None = None  # reconnected; not yet seen whether the server resumed

    def open_gap(self, reason: str) -> None:
        if self.gap_reason is None:
            self.gap_reason, self.gap_from = reason, self.last_seen
        self.gap_attempts += 1

    def close_gap(self, note: str = "") -> None:
        if self.gap_reason is None:
            return
        self.sink.write_json(
            {
                "marker": "gap",
                "source": self.name,
                "from": _utc_iso(self.gap_from),
                "to": _utc_iso(),
                "reason": self.gap_reason + note,
                "attempts": self.gap_attempts,
            }
        )
        self.gap_reason, self.gap_from, self.gap_attempts = None, None, 0
        self.resuming_from = None

    def resumed(self) -> None:
        """The server replayed what we missed from its buffer: no gap to record."""
        self.gap_reason, self.gap_from, self.gap_attempts = None, None, 0
        self.resuming_from = None

    def check_resume(self, event_id: str) -> None:
        """After a reconnect, the first numbered event tells: same server (ids share their
        epoch) means it resumed; another epoch means it restarted and its buffer is lost."""
        if self.resuming_from is None or not event_id:
            return
        if event_id.rpartition("-")[0] == self.resuming_from.rpartition("-")[0]:
            self.resumed()
        else:
            self.close_gap(" (the server restarted: what it logged meanwhile is lost)")


class _StreamLost(Exception):
    """A connection attempt failed or the stream broke before carrying anything."""


_Outcome = Literal["closed", "stopped", "lost"]


class LogHarvester:
    """Follows log sources in background threads and writes them under `logs_dir`.

    SSE sources reconnect with bounded exponential backoff and record what they missed as
    marker lines: {"marker": "gap" | "dropped" | "closed", "source": name, ...}.
    """

    def __init__(
        self,
        logs_dir: Path,
        redact: Callable[[str], str] = _identity,
        *,
        run_id: str | None = None,
        losses: WriteLosses | None = None,
        read_timeout: float = 30.0,
        max_backoff: float = 5.0,
    ) -> None:
        self.logs_dir = logs_dir
        self.redact = redact
        self.run_id = run_id
        self.losses = losses  # where lines that could not be written are recorded
        self.read_timeout = read_timeout  # no bytes (not even a heartbeat) this long = lost
        self.max_backoff = max_backoff
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._sinks: dict[str, _Sink] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._sse: dict[str, _SseSource] = {}

    # -- sources -----------------------------------------------------------------------------

    def add_sse_source(self, name: str, url: str, headers: dict[str, str] | None = None) -> Path:
        """Follow an SSE log stream into `<name>.jsonl`; returns that path."""
        sink = self._new_sink(name, ".jsonl")
        source = _SseSource(name, url, dict(headers or {}), sink)
        with self._lock:
            self._sse[name] = source
        self._start(sink.path.name, self._run_sse, source)
        return sink.path

    def add_stream_source(self, name: str, stream: IO[bytes] | Iterable[bytes | str]) -> Path:
        """Copy a stream's lines (e.g. a Popen stdout) into `<name>.log` until EOF."""
        sink = self._new_sink(name, ".log")
        self._start(sink.path.name, self._run_stream, name, stream, sink)
        return sink.path

    def tail(self, name: str, n: int = 40) -> list[str]:
        """The last `n` lines (up to 1000) written for a source, already redacted.

        A name with both a stream (`.log`) and an SSE (`.jsonl`) source tails the stream."""
        sink = self._sinks.get(f"{name}.log") or self._sinks.get(f"{name}.jsonl")
        if sink is None:
            known = ", ".join(sorted(self._sinks)) or "none"
            raise KeyError(f"no log source named {name!r} (known: {known})") from None
        return sink.tail(n)

    def incomplete(self) -> dict[str, str]:
        """Log files that lost lines to a write error: file name → what happened."""
        return {
            key: f"{sink.write_error} ({sink.dropped} line(s) dropped)"
            for key, sink in self._sinks.items()
            if sink.write_error is not None
        }

    def running(self) -> list[str]:
        """Names of sources whose thread is still running."""
        # Threads are keyed by file name (a source may have .log and .jsonl); report names.
        alive = [key for key, thread in self._threads.items() if thread.is_alive()]
        return sorted({key.rsplit(".", 1)[0] for key in alive})

    def stop(self, timeout: float = 5.0) -> list[str]:
        """Stop SSE sources and wait up to `timeout` s for every thread; returns those still
        running (stream sources whose writer has not closed its end yet, or a connect that
        is still blocked)."""
        deadline = time.perf_counter() + timeout
        self._stopping.set()
        with self._lock:
            clients = [s.client for s in self._sse.values() if s.client is not None]
        for client in clients:
            client.close()  # wakes the source thread blocked on the stream
        for thread in list(self._threads.values()):
            thread.join(max(0.0, deadline - time.perf_counter()))
        running = self.running()
        if running:
            logger.warning("Log sources still running after %.1fs: %s", timeout, running)
        return running

    def __enter__(self) -> LogHarvester:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _new_sink(self, name: str, suffix: str) -> _Sink:
        if self._stopping.is_set():
            raise RuntimeError("LogHarvester is stopped; create a new one to add sources")
        # One name may have a stream (.log) and an SSE (.jsonl) source, one of each.
        key = f"{name}{suffix}"
        if not name or "/" in name or key in self._sinks:
            raise ValueError(f"log source name {name!r} is empty, has a '/' or is taken")
        with contextlib.suppress(OSError):  # the sink records it when it cannot open its file
            self.logs_dir.mkdir(parents=True, exist_ok=True)
        sink = _Sink(self.logs_dir / key, self.redact, self.run_id, self.losses)
        self._sinks[key] = sink
        return sink

    def _start(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=f"log-{name}", daemon=True)
        self._threads[name] = thread
        thread.start()

    # -- stream sources ----------------------------------------------------------------------

    def _run_stream(self, name: str, stream: Iterable[bytes | str], sink: _Sink) -> None:
        try:
            for raw in stream:
                line = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
                sink.write_line(line.rstrip("\r\n"))
        except (OSError, ValueError) as exc:  # the pipe was closed under us
            logger.warning("Log source %s stopped reading: %s", name, exc)
        finally:
            sink.close()

    # -- SSE sources -------------------------------------------------------------------------

    def _run_sse(self, source: _SseSource) -> None:
        try:
            while not self._stopping.is_set():
                # A fresh Retrying per session: a stream that carried data resets the backoff.
                retrying = Retrying(
                    retry=retry_if_exception_type(_StreamLost),
                    wait=wait_exponential(multiplier=0.1, min=0.05, max=self.max_backoff),
                    stop=self._should_stop,
                    sleep=self._backoff_sleep,
                    reraise=True,
                )
                try:
                    outcome = retrying(self._follow_once, source)
                except _StreamLost:
                    break  # stop() was called while reconnecting
                if outcome != "lost":
                    break
        finally:
            source.close_gap(" (harvester stopped before reconnecting)")
            source.sink.close()

    def _backoff_sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)  # stop() cuts the wait short

    def _should_stop(self, _state: RetryCallState) -> bool:
        return self._stopping.is_set()

    def _follow_once(self, source: _SseSource) -> _Outcome:
        """One connection: copy events until the stream closes, breaks or we are stopped."""
        headers = dict(source.headers)
        if source.last_event_id:
            headers[LAST_EVENT_ID_HEADER] = source.last_event_id  # resume where we left off
        client = SSEClient(source.url, strict=False, timeout=self.read_timeout, headers=headers)
        with self._lock:
            if self._stopping.is_set():
                return "stopped"
            source.client = client
        carried = False
        try:
            try:
                client.open()
            except (SSETimeout, SSEStreamClosed, requests.RequestException) as exc:
                return self._lost(source, f"connect failed: {exc}", carried)
            if client.status_code != 200:
                return self._lost(source, f"HTTP {client.status_code}", carried)
            if source.gap_reason is not None and source.last_event_id:
                source.resuming_from = source.last_event_id  # decided by the next log event
            else:
                source.close_gap()
            while True:
                try:
                    event = client.next_event()
                except SSETimeout as exc:
                    return self._lost(source, str(exc), carried)
                except SSEStreamClosed:
                    if self._stopping.is_set():
                        return "stopped"
                    reason = "server ended the stream without connection_close"
                    return self._lost(source, reason, carried)
                source.last_seen = datetime.now(UTC)
                if event["event"] == EVENT_LOG:
                    source.check_resume(client.last_event_id)
                    source.last_event_id = client.last_event_id or source.last_event_id
                if self._copy_event(source, event):
                    return "closed"
                carried = carried or event["event"] != EVENT_CONNECTION_OPEN
        finally:
            with self._lock:
                source.client = None
            client.close()

    def _lost(self, source: _SseSource, reason: str, carried: bool) -> _Outcome:
        if self._stopping.is_set():
            return "stopped"
        logger.info("Log source %s lost its stream: %s", source.name, reason)
        source.open_gap(reason)
        if carried:
            return "lost"  # reconnect at once, backoff starts over
        raise _StreamLost(reason)

    def _copy_event(self, source: _SseSource, event: SSEEvent) -> bool:
        """Write one event's line, if any; True when the server closed the stream."""
        name, data = event["event"], event["data"]
        if name == EVENT_LOG:
            source.sink.write_json(data)
        elif name == EVENT_DROPPED:
            count = data.get("dropped") if isinstance(data, dict) else data
            source.sink.write_json(
                {"marker": "dropped", "source": source.name, "count": count, "at": _utc_iso()}
            )
        elif name == EVENT_CONNECTION_CLOSE:
            source.sink.write_json({"marker": "closed", "source": source.name, "at": _utc_iso()})
            return True
        return False  # connection_open, heartbeat and unknown events write nothing
