"""A server-sent events client for tests and tools: a spec parser, deadlines, a transcript.

`SSEParser` turns byte/str chunks into `SSEFrame`s (WHATWG event-stream rules).
`SSEClient` follows one HTTP stream: a reader thread feeds the parser as bytes arrive and
queues JSON-decoded `SSEEvent`s, so every wait has a deadline and none can hang. Each client
keeps a transcript (raw frames, events, time offsets) that a test can dump when it fails.
"""

from __future__ import annotations

import codecs
import http.client
import json
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypedDict

import requests
from urllib3.exceptions import ProtocolError, ReadTimeoutError

logger = logging.getLogger(__name__)

_EOL = re.compile(r"\r\n|\r|\n")
# Strict mode: a field name must look like one; `{"a": 1}` or `HTTP/1.1 500` do not.
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_DIGITS = re.compile(r"[0-9]+")
_READ_SIZE = 65536
_CLOSE_JOIN_SECONDS = 1.0
_BODY_SAMPLE_BYTES = 2048


class SSEEvent(TypedDict):
    """What `SSEClient` yields: the event name and its JSON-decoded data."""

    event: str
    data: Any


@dataclass(frozen=True)
class SSEFrame:
    """One dispatched event block as the parser saw it; `data` is not decoded."""

    event: str
    data: str
    id: str  # the stream's last event id when this event was dispatched ("" if none yet)
    retry: int | None  # a `retry:` value set in this block
    raw: str  # the block's lines, LF-joined, comments included


class SSEProtocolError(ValueError):
    """The stream is not valid SSE (strict mode), or an event's data is not JSON."""

    def __init__(self, reason: str, raw: str, frames: list[SSEFrame] | None = None) -> None:
        super().__init__(f"{reason}; event block: {raw!r}")
        self.reason = reason
        self.raw = raw
        # Frames completed earlier in the same chunk, so a caller can still deliver them.
        self.frames = frames or []


class SSETimeout(TimeoutError):
    """No event (or no bytes) arrived in time."""


class SSEStreamClosed(ConnectionError):
    """The response ended (server closed it, or the client was closed) before the wait was met."""


class SSEParser:
    """Incremental WHATWG event-stream parser: `feed` chunks, get the completed frames back.

    strict=True raises `SSEProtocolError` on a line that is not an SSE field and on a named
    event without data; strict=False follows the spec (ignore the line, skip the event) and
    logs a warning. Unknown but well-formed field names are ignored in both modes.
    """

    def __init__(
        self, strict: bool = True, on_malformed: Callable[[str, str], None] | None = None
    ) -> None:
        self.strict = strict
        self.on_malformed = on_malformed  # lenient mode: called with (reason, raw block)
        self.last_event_id = ""
        self.retry: int | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._skip_lf = False  # the last chunk ended in CR: an LF opening the next belongs to it
        self._at_start = True  # a leading BOM is dropped once
        self._reset_block()

    def _reset_block(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._block_retry: int | None = None
        self._lines: list[str] = []

    @property
    def pending(self) -> str:
        """The unfinished block so far (lines and an unterminated tail)."""
        return "\n".join([*self._lines, self._buffer] if self._buffer else self._lines)

    def feed(self, chunk: bytes | str) -> list[SSEFrame]:
        """Add a chunk; return the events it completed."""
        text = self._decoder.decode(chunk) if isinstance(chunk, bytes) else chunk
        if text and self._at_start:
            self._at_start = False
            text = text.removeprefix("\ufeff")
        if text and self._skip_lf:
            self._skip_lf = False
            text = text.removeprefix("\n")
        self._buffer += text
        frames: list[SSEFrame] = []
        pos = 0
        try:
            while match := _EOL.search(self._buffer, pos):
                line = self._buffer[pos : match.start()]
                pos = match.end()
                if match.group() == "\r" and pos == len(self._buffer):
                    self._skip_lf = True
                frame = self._line(line)
                if frame is not None:
                    frames.append(frame)
        except SSEProtocolError as err:
            err.frames = frames
            raise
        finally:
            # Lines after a strict error stay buffered: another feed() carries on from there.
            self._buffer = self._buffer[pos:]
        return frames

    def finish(self) -> str:
        """End of stream: discard the unfinished block (per spec) and return its text."""
        self._buffer += self._decoder.decode(b"", final=True)
        partial = self.pending
        self._buffer = ""
        self._reset_block()
        return partial

    def _line(self, line: str) -> SSEFrame | None:
        if not line:
            return self._dispatch()
        self._lines.append(line)
        if line.startswith(":"):
            return None  # comment
        name, colon, value = line.partition(":")
        if colon:
            value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry":
            if _DIGITS.fullmatch(value):
                self.retry = self._block_retry = int(value)
        elif not _FIELD_NAME.fullmatch(name):
            self._malformed(f"line {line!r} is not an SSE field", reset=True)
        return None

    def _dispatch(self) -> SSEFrame | None:
        raw = "\n".join(self._lines)
        event, data, retry = self._event, self._data, self._block_retry
        self._reset_block()
        if not data:
            if event:
                self._malformed(f"event {event!r} has no data line", raw=raw)
            return None  # spec: nothing to dispatch (blank lines, comments, id/retry only)
        return SSEFrame(event or "message", "\n".join(data), self.last_event_id, retry, raw)

    def _malformed(self, reason: str, raw: str | None = None, reset: bool = False) -> None:
        raw = self.pending if raw is None else raw
        if self.strict:
            if reset:
                self._reset_block()
            raise SSEProtocolError(reason, raw)
        logger.warning("Skipping malformed SSE input: %s; block: %r", reason, raw)
        if self.on_malformed is not None:
            self.on_malformed(reason, raw)


# Active `record_clients()` lists; every client that opens is appended to each.
_recorders: list[list[SSEClient]] = []
_recorders_lock = threading.Lock()


@contextmanager
def record_clients() -> Iterator[list[SSEClient]]:
    """Collect every SSEClient opened inside the block, e.g. to dump transcripts on failure."""
    clients: list[SSEClient] = []
    with _recorders_lock:
        _recorders.append(clients)
    try:
        yield clients
    finally:
        with _recorders_lock:
            _recorders.remove(clients)


_ItemKind = Literal["event", "end", "timeout", "error", "closed"]


class SSEClient:
    """Follows one SSE response; iterate it or wait with `next_event` / `events_until`.

    `timeout` bounds the connect, the wait for each next byte (HTTP read timeout) and, by
    default, every wait for an event. strict=True raises `SSEProtocolError` (a ValueError) on
    malformed events, bad JSON or a non-SSE response; strict=False logs, skips malformed
    events and yields undecodable data as the raw string.
    """

    def __init__(
        self,
        url: str,
        strict: bool = True,
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
        session: requests.Session | None = None,
        *,
        on_close: Callable[[SSEClient], None] | None = None,
    ) -> None:
        self.url = url
        self.strict = strict
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.on_close = on_close
        self.received = 0  # events queued by the reader so far
        self.started_at: datetime | None = None
        self._session = session
        self._parser = SSEParser(strict=strict, on_malformed=self._record_skipped)
        self._queue: queue.Queue[tuple[_ItemKind, Any]] = queue.Queue()
        self._finished: tuple[_ItemKind, Any] | None = None
        self._response: requests.Response | None = None
        self._reader: threading.Thread | None = None
        self._closed = False
        self._registered = False
        self._lock = threading.Lock()
        self._t0 = self._last_bytes_at = time.perf_counter()
        self._transcript: list[dict[str, Any]] = []
        self._names: list[str] = []

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self) -> SSEClient:
        """Connect (once) and start reading; SSETimeout if the server does not answer in time."""
        if self._response is not None:
            return self
        if self._closed:
            raise SSEStreamClosed(f"SSEClient for {self.url} is closed; open a new one")
        if not self._registered:  # let every active record_clients() see this client
            self._registered = True
            with _recorders_lock:
                for clients in _recorders:
                    clients.append(self)
        self._t0 = self._last_bytes_at = time.perf_counter()
        self.started_at = datetime.now(UTC)
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache", **self.headers}
        get = self._session.get if self._session is not None else requests.get
        try:
            response = get(
                self.url, stream=True, headers=headers, timeout=(self.timeout, self.timeout)
            )
        except requests.Timeout as exc:
            self._record("timeout", message=str(exc))
            raise SSETimeout(
                f"Could not open {self.url} within {self.timeout:g}s (connect or response "
                f"headers timed out): {exc}"
            ) from exc
        except requests.RequestException as exc:
            self._record("error", message=str(exc))
            raise
        self._response = response
        self._record(
            "open",
            url=self.url,
            status=response.status_code,
            headers=dict(response.headers),
            started_at=self.started_at.isoformat(),
        )
        if self._closed:  # closed from another thread while connecting
            response.close()
            raise SSEStreamClosed(f"SSEClient for {self.url} was closed while connecting")
        self._reader = threading.Thread(
            target=self._read_loop, args=(response,), name=f"sse-reader {self.url}", daemon=True
        )
        self._reader.start()
        return self

    def close(self) -> None:
        """Stop reading and release the connection; safe to call twice or from another thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        response, reader = self._response, self._reader
        if response is not None and reader is not None and reader.is_alive():
            # Wake a read blocked on the socket; fails harmlessly once the socket is gone.
            with suppress(ValueError, RuntimeError, OSError):
                response.raw.shutdown()
            if reader is not threading.current_thread():
                reader.join(_CLOSE_JOIN_SECONDS)
        if response is not None:
            response.close()
        self._queue.put(("closed", None))
        self._record("close")
        if self.on_close is not None:
            self.on_close(self)

    def __enter__(self) -> SSEClient:
        try:
            return self.open()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def status_code(self) -> int | None:
        return None if self._response is None else self._response.status_code

    @property
    def response_headers(self) -> Mapping[str, str]:
        return {} if self._response is None else self._response.headers

    @property
    def last_event_id(self) -> str:
        return self._parser.last_event_id

    # -- waiting -----------------------------------------------------------------------------

    def __iter__(self) -> Iterator[SSEEvent]:
        return self

    def __next__(self) -> SSEEvent:
        try:
            return self.next_event()
        except SSEStreamClosed:
            raise StopIteration from None

    def next_event(self, timeout: float | None = None) -> SSEEvent:
        """The next event, waiting at most `timeout` s (default: the client's timeout).

        Raises SSETimeout when nothing arrives in time, SSEStreamClosed when the stream ended.
        """
        self.open()
        wait = self.timeout if timeout is None else timeout
        if self._finished is None:
            try:
                kind, payload = self._queue.get(timeout=max(wait, 0.0))
            except queue.Empty:
                raise SSETimeout(self._describe(self._no_event_message(wait))) from None
            if kind == "event":
                return payload
            self._finished = (kind, payload)
        raise self._finished_error()

    def events_until(
        self, until: str | Callable[[SSEEvent], bool], timeout: float | None = None
    ) -> list[SSEEvent]:
        """Events up to and including the first matching one (an event name or a predicate)."""
        matches = (lambda ev: ev["event"] == until) if isinstance(until, str) else until
        what = f"event {until!r}" if isinstance(until, str) else "a matching event"
        return self._collect(what, matches, timeout)

    def collect_until_close(self, timeout: float | None = None) -> list[SSEEvent]:
        """Every event until the server ends the response; SSETimeout if it does not in time."""
        return self._collect("the end of the stream", None, timeout)

    def _collect(
        self, what: str, matches: Callable[[SSEEvent], bool] | None, timeout: float | None
    ) -> list[SSEEvent]:
        limit = self.timeout if timeout is None else timeout
        deadline = time.perf_counter() + limit
        seen: list[SSEEvent] = []
        while True:
            try:
                event = self.next_event(deadline - time.perf_counter())
            except SSETimeout as exc:
                raise SSETimeout(f"While waiting {limit:g}s for {what}: {exc}") from None
            except SSEStreamClosed as exc:
                if matches is None:
                    return seen
                raise SSEStreamClosed(f"Stream ended before {what}: {exc}") from None
            seen.append(event)
            if matches is not None and matches(event):
                return seen

    def _no_event_message(self, wait: float) -> str:
        silence = time.perf_counter() - self._last_bytes_at
        if silence < wait:
            return f"No event within {wait:g}s"
        return (
            f"No event within {wait:g}s and no bytes for {silence:.2f}s: the server stalled "
            "or stopped sending heartbeats"
        )

    def _finished_error(self) -> Exception:
        assert self._finished is not None
        kind, payload = self._finished
        if kind == "timeout":
            return SSETimeout(
                self._describe(
                    f"No bytes for {self.timeout:g}s (read timeout): the server stalled or stopped "
                    "sending heartbeats"
                )
            )
        if kind == "error":
            return payload
        reason = "the client was closed" if kind == "closed" else payload
        return SSEStreamClosed(self._describe(f"Stream ended ({reason})"))

    def _describe(self, what: str) -> str:
        last = ", ".join(self._names[-5:])
        return (
            f"{what}; url {self.url}, {self.received} events received so far"
            + (f" (last: {last})" if last else "")
            + f", {time.perf_counter() - self._t0:.2f}s since connect"
        )

    # -- reader thread -----------------------------------------------------------------------

    def _read_loop(self, response: requests.Response) -> None:
        item: tuple[_ItemKind, Any] = ("end", "server ended the response")
        try:
            if not self._check_response(response):
                item = ("error", self._not_sse_error(response))
                return
            while chunk := response.raw.read1(_READ_SIZE):
                self._last_bytes_at = time.perf_counter()
                try:
                    frames, failure = self._parser.feed(chunk), None
                except SSEProtocolError as err:
                    frames, failure = err.frames, err
                for frame in frames:
                    self._deliver(frame)
                if failure is not None:
                    raise failure
        except SSEProtocolError as err:
            self._record("malformed", raw=err.raw, reason=err.reason)
            item = ("error", err)
        except (ReadTimeoutError, TimeoutError):
            item = ("timeout", None)
        except (ProtocolError, http.client.HTTPException, OSError, ValueError) as exc:
            item = ("end", f"connection lost: {exc}")
        except Exception as exc:  # anything else is re-raised in the consumer's thread
            item = ("error", exc)
        finally:
            if self._closed:
                item = ("closed", None)
            partial = self._parser.finish()
            if partial:
                self._record("partial", raw=partial)
            self._record(item[0] if item[0] != "error" else "failed", message=str(item[1]))
            self._queue.put(item)

    def _check_response(self, response: requests.Response) -> bool:
        if response.status_code == 204:  # spec: "no content" means do not reconnect
            return True
        ctype = response.headers.get("Content-Type", "")
        if response.status_code == 200 and ctype.startswith("text/event-stream"):
            return True
        if self.strict:
            return False
        logger.warning(
            "%s answered HTTP %s %r; parsing it as SSE anyway",
            self.url,
            response.status_code,
            ctype,
        )
        return True

    def _not_sse_error(self, response: requests.Response) -> SSEProtocolError:
        body = response.raw.read1(_BODY_SAMPLE_BYTES).decode("utf-8", errors="replace")
        return SSEProtocolError(
            f"{self.url} answered HTTP {response.status_code} "
            f"{response.headers.get('Content-Type', '')!r}, not a 200 text/event-stream "
            "(use strict=False to parse it anyway)",
            body,
        )

    def _deliver(self, frame: SSEFrame) -> None:
        try:
            data = json.loads(frame.data)
        except ValueError as exc:
            if self.strict:
                raise SSEProtocolError(
                    f"event {frame.event!r} data is not JSON ({exc})", frame.raw
                ) from exc
            logger.warning(
                "SSE event %r from %s: data is not JSON, kept as text", frame.event, self.url
            )
            data = frame.data
        self._record("event", event=frame.event, data=data, id=frame.id, raw=frame.raw)
        self.received += 1
        self._names.append(frame.event)
        self._queue.put(("event", SSEEvent(event=frame.event, data=data)))

    def _record_skipped(self, reason: str, raw: str) -> None:
        self._record("skipped", reason=reason, raw=raw)

    # -- transcript --------------------------------------------------------------------------

    def _record(self, kind: str, **fields: Any) -> None:
        entry = {"t": round(time.perf_counter() - self._t0, 4), "kind": kind, **fields}
        with self._lock:
            self._transcript.append(entry)

    @property
    def transcript(self) -> list[dict[str, Any]]:
        """What happened, in order: dicts with `t` (s since connect), `kind` and details."""
        with self._lock:
            return list(self._transcript)

    def transcript_text(self) -> str:
        """The transcript as readable lines, one per entry."""
        lines = [f"SSE transcript for {self.url}"]
        for entry in self.transcript:
            details = {k: v for k, v in entry.items() if k not in ("t", "kind")}
            text = json.dumps(details, default=str)
            lines.append(f"{entry['t']:9.4f}s {entry['kind']:<9} {text}")
        return "\n".join(lines) + "\n"

    def write_transcript(self, path: Path) -> Path:
        """Write the transcript as JSON lines (first line names the URL); returns `path`."""
        path.parent.mkdir(parents=True, exist_ok=True)
        header = {"url": self.url, "strict": self.strict, "timeout": self.timeout}
        lines = [json.dumps(header)] + [json.dumps(e, default=str) for e in self.transcript]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path
