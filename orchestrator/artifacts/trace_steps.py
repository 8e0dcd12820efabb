"""A test's own steps, read from its Playwright trace: each API call (action or assertion)
with its start and end in UTC, where in the test it was made, and its error if it failed.

A trace's `trace.trace` is JSON lines: a `context-options` event whose `wallTime` (epoch ms)
and `monotonicTime` (ms) anchor the `before`/`after` events' monotonic `startTime`/`endTime`
to the wall clock; `trace.stacks` maps each call id to the frames that made the call. Traces
are read when a report is built, never while a test runs, and a missing, truncated or foreign
file gives no steps rather than an error: a report never fails on its evidence.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePath
from typing import Any

__all__ = ["Step", "read_steps", "readable_selector"]

# Calls a test never makes itself (the plumbing of tracing, artifacts and streams).
_PLUMBING = frozenset({"Tracing", "LocalUtils", "Artifact", "Stream", "WritableStream", "JsonPipe"})
_TRACE_SUFFIX = ".trace"
_STACKS_SUFFIX = ".stacks"
_DETAIL_LIMIT = 160  # characters of a value (a URL, a filled text) shown in a step
_KINDS = re.compile(r'"type"\s*:\s*"(?:before|after|log|context-options)"')
_READ_ERRORS = (
    OSError,
    EOFError,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    ValueError,
    RuntimeError,  # an encrypted member
    NotImplementedError,  # an unsupported compression
)


@dataclass(frozen=True)
class Step:
    """One API call of the test, as the trace recorded it."""

    call_id: str
    name: str  # `click`, `goto`, `Expect "to_have_text"`
    detail: str  # what it acted on: the selector, the URL, the expected value
    started_at: datetime  # UTC
    ended_at: datetime | None  # None: the trace stopped before the call returned
    error: str | None = None  # the call failed: why (with Playwright's last log line)
    location: str | None = None  # `test_x.py:12`: the innermost frame that made the call

    @property
    def text(self) -> str:
        return f"{self.name} {self.detail}".strip()

    @property
    def duration_ms(self) -> int | None:
        if self.ended_at is None:
            return None
        return round((self.ended_at - self.started_at).total_seconds() * 1000)


def read_steps(path: Path) -> list[Step]:
    """The steps of every trace file in the zip at `path`, in the order they started; an
    empty list when the file is missing or is not a readable Playwright trace."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            locations: dict[str, str] = {}
            for name in names:
                if name.endswith(_STACKS_SUFFIX):
                    locations.update(_locations(archive.read(name)))
            steps: list[Step] = []
            for name in names:
                if name.endswith(_TRACE_SUFFIX):
                    with archive.open(name) as raw:
                        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace")
                        steps += _steps(text, locations)
    except _READ_ERRORS:
        return []
    return sorted(steps, key=lambda step: step.started_at)


def _steps(lines: Iterable[str], locations: Mapping[str, str]) -> list[Step]:
    """The calls of one trace file: each `before` with its `after` (and last `log` line)."""
    anchor: tuple[float, float] | None = None  # (wall ms, monotonic ms) of the context
    started: dict[str, tuple[dict[str, Any], datetime]] = {}
    last_log: dict[str, str] = {}
    done: dict[str, Step] = {}
    for line in lines:
        if not _KINDS.search(line):
            continue  # snapshots, screencast frames, resources: skipped unparsed
        event = _json_object(line)
        kind = event.get("type")
        if kind == "context-options":
            anchor = _anchor(event)
        elif kind == "before" and isinstance(event.get("callId"), str):
            at = _when(event, "startTime", anchor)
            if at is not None and event.get("class") not in _PLUMBING:
                started[event["callId"]] = (event, at)
        elif kind == "log" and isinstance(event.get("message"), str):
            last_log[str(event.get("callId"))] = event["message"].strip()
        elif kind == "after" and event.get("callId") in started:
            before, at = started.pop(event["callId"])
            done[before["callId"]] = _step(before, at, event, anchor, locations, last_log)
    for call_id, (before, at) in started.items():  # never returned: the trace stopped first
        done[call_id] = _step(before, at, None, anchor, locations, last_log)
    return list(done.values())


def _step(
    before: dict[str, Any],
    at: datetime,
    after: dict[str, Any] | None,
    anchor: tuple[float, float] | None,
    locations: Mapping[str, str],
    last_log: Mapping[str, str],
) -> Step:
    call_id = str(before["callId"])
    ended = None
    error = None
    if after is not None:
        ended = _when(after, "endTime", anchor, before)
        failure = after.get("error")
        if isinstance(failure, dict):
            inner = failure.get("error")  # {"error": {...}} in some versions
            source = inner if isinstance(inner, dict) else failure
            lines = str(source.get("message") or "").strip().splitlines()
            error = lines[0] if lines else "failed"
            if last_log.get(call_id):
                error += f" — {last_log[call_id]}"
    name, detail = _describe(before)
    return Step(call_id, name, detail, at, ended, error, locations.get(call_id))


def _describe(before: Mapping[str, Any]) -> tuple[str, str]:
    """A call's name and what it acted on, in the words a test uses."""
    params = before.get("params")
    params = params if isinstance(params, dict) else {}
    method = str(before.get("method") or "")
    name = str(before.get("title") or before.get("apiName") or method or "call")
    parts: list[str] = []
    if isinstance(params.get("selector"), str):
        parts.append(_short(readable_selector(params["selector"])))
    else:
        for key in ("url", "key", "name"):
            if isinstance(params.get(key), str):
                parts.append(_short(params[key]))
                break
    if method == "expect":
        if params.get("isNot"):
            name += " not"
        parts += _expected(params)
    else:
        for key in ("value", "text", "values", "options"):
            value = params.get(key)
            if isinstance(value, str):
                parts.append(_quoted(value))
                break
    return name, " ".join(parts)


def _expected(params: Mapping[str, Any]) -> list[str]:
    texts = params.get("expectedText")
    if isinstance(texts, list):
        shown = [t.get("string") or t.get("regexSource") for t in texts if isinstance(t, dict)]
        return [" ".join(_quoted(str(s)) for s in shown if s is not None)]
    for key in ("expectedNumber", "expectedValue"):
        if key in params:
            return [_short(json.dumps(params[key], default=str, ensure_ascii=False))]
    return []


def readable_selector(selector: str) -> str:
    """A selector as the test wrote it: Playwright's `internal:testid=[data-testid="x"s]`
    reads `get_by_test_id("x")`, and so on for roles, texts and labels."""
    return " >> ".join(_readable_part(part.strip()) for part in selector.split(" >> "))


_INTERNAL = (
    (re.compile(r'^internal:testid=\[data-testid=(".*")s?\]$'), "get_by_test_id({})"),
    (re.compile(r'^internal:role=([\w-]+)\[name=(".*")[is]?\]$'), 'get_by_role("{}", name={})'),
    (re.compile(r"^internal:role=([\w-]+)$"), 'get_by_role("{}")'),
    (re.compile(r'^internal:text=(".*")[is]?$'), "get_by_text({})"),
    (re.compile(r'^internal:label=(".*")[is]?$'), "get_by_label({})"),
    (re.compile(r'^internal:attr=\[placeholder=(".*")[is]?\]$'), "get_by_placeholder({})"),
)


def _readable_part(part: str) -> str:
    for pattern, form in _INTERNAL:
        match = pattern.match(part)
        if match:
            return form.format(*match.groups())
    return part


def _quoted(text: str) -> str:
    return json.dumps(_short(text), ensure_ascii=False)


def _when(
    event: Mapping[str, Any],
    key: str,
    anchor: tuple[float, float] | None,
    before: Mapping[str, Any] | None = None,
) -> datetime | None:
    """`event[key]` (monotonic ms) in UTC: by the context's anchor, or (older traces) by the
    wall time the `before` event carries itself."""
    moment = event.get(key)
    if not isinstance(moment, int | float):
        return None
    origin = before if before is not None else event
    wall = origin.get("wallTime")
    start = origin.get("startTime")
    if isinstance(wall, int | float) and isinstance(start, int | float):
        epoch_ms = wall + (moment - start)
    elif anchor is not None:
        epoch_ms = anchor[0] + (moment - anchor[1])
    else:
        return None
    try:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=epoch_ms)
    except OverflowError:
        return None


def _anchor(event: Mapping[str, Any]) -> tuple[float, float] | None:
    wall, monotonic = event.get("wallTime"), event.get("monotonicTime")
    if isinstance(wall, int | float) and isinstance(monotonic, int | float):
        return float(wall), float(monotonic)
    return None


def _locations(data: bytes) -> dict[str, str]:
    """call id -> `file.py:line` of the innermost frame, from a `trace.stacks` member."""
    stacks = _json_object(data.decode("utf-8", errors="replace"))
    files = stacks.get("files")
    found: dict[str, str] = {}
    if not isinstance(files, list):
        return found
    for entry in stacks.get("stacks") or []:
        try:
            call_id, frames = entry
            file_index, line = frames[0][0], frames[0][1]
            found[str(call_id)] = f"{PurePath(str(files[file_index])).name}:{int(line)}"
        except (TypeError, ValueError, IndexError):
            continue
    return found


def _json_object(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _short(text: str) -> str:
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 1] + "…"
