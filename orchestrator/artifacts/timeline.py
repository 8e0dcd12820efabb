"""One failed test's timeline: the test itself (its start, each Playwright step from its
trace, the moment it failed, its end), browser console events, access records and every
service's records merged in time order, each carrying the correlation id that links them.

A request the page logged is placed when it was sent (the event's `sent_at`, see
`orchestrator.contract.CONSOLE_SENT_AT`), not when the page logged it after the response."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from orchestrator.artifacts.trace_steps import Step
from orchestrator.contract import CONSOLE_SENT_AT
from orchestrator.util import utc_instant

# A record whose extra fields hold these is an access record (one per request), whatever
# its logger: the timeline shows it as `access`, worded by `request_text`.
ACCESS_FIELDS = frozenset({"method", "path", "status"})
TEST_SOURCE = "test"  # the source of the test's own entries: start, steps, failure, end


@dataclass(frozen=True)
class TimelineEntry:
    at: str | None  # ISO 8601 UTC, as the record has it; None when the source had no time
    source: str  # "browser", "access", or a log's name: "web", "worker-1", ...
    level: str
    text: str
    correlation_id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "source": self.source,
            "level": self.level,
            "text": self.text,
            "correlation_id": self.correlation_id,
        }


def request_text(fields: Mapping[str, Any]) -> str:
    """`GET /api/x → 200 (12 ms)` from method/path/status/duration_ms fields."""
    text = f"{fields.get('method', '?')} {fields.get('path', '?')}"
    if fields.get("status") is not None:
        text += f" → {fields['status']}"
    if fields.get("duration_ms") is not None:
        text += f" ({fields['duration_ms']} ms)"
    return text


def console_entry(event: Mapping[str, Any]) -> TimelineEntry:
    """A browser console event as the browser plugin records it (`type`, `at`: when it
    reached us, the JSON); a request's event sits at its `sent_at` when it has one."""
    details = {k: v for k, v in event.items() if k not in ("type", "at", "correlation_id")}
    if event.get("kind") == "api_call":
        text = request_text(event)
    else:
        text = str(event.get("message") or json.dumps(details, default=str))
    sent_at = event.get(CONSOLE_SENT_AT)
    return TimelineEntry(
        at=sent_at if isinstance(sent_at, str) and utc_instant(sent_at) else event.get("at"),
        source="browser",
        level=str(event.get("type") or "log"),
        text=text,
        correlation_id=event.get("correlation_id"),
        fields=details,
    )


def record_entry(source: str, record: Mapping[str, Any]) -> TimelineEntry:
    """A structured log record of a service (`source` is the log's name, e.g. worker-1)."""
    extra = record.get("extra")
    if not isinstance(extra, dict):
        extra = {}
    if extra.keys() >= ACCESS_FIELDS:
        source, text = "access", request_text(extra)
    else:
        text = str(record.get("message", ""))
    return TimelineEntry(
        at=record.get("timestamp"),
        source=source,
        level=str(record.get("level") or "INFO"),
        text=text,
        correlation_id=record.get("correlation_id"),
        fields={"logger": record.get("logger"), **extra},
    )


def step_entry(step: Step) -> TimelineEntry:
    """A Playwright call of the test (from its trace), at the moment it started."""
    text = step.text
    if step.location:
        text += f" · {step.location}"
    if step.duration_ms is not None:
        text += f" ({step.duration_ms} ms)"
    if step.error:
        text += f" ✗ {step.error}"
    return TimelineEntry(
        at=iso_utc(step.started_at),
        source=TEST_SOURCE,
        level="error" if step.error else "step",
        text=text,
        fields={"call_id": step.call_id, "location": step.location},
    )


def lifecycle_entries(details: Mapping[str, Any]) -> list[TimelineEntry]:
    """The test's start, the moment its failure was raised (where, not the error again) and
    its end, from the record the evidence plugin keeps of a failed test or attempt."""
    entries = []
    if details.get("started_at"):
        entries.append(
            TimelineEntry(str(details["started_at"]), TEST_SOURCE, "info", "test started")
        )
    if details.get("failed_at"):  # its error is the card's: said once, not again here
        text = f"✗ {details.get('outcome') or 'failed'} in {details.get('phase') or 'call'}"
        if details.get("crash"):
            text += f" at {details['crash']}"
        entries.append(TimelineEntry(str(details["failed_at"]), TEST_SOURCE, "error", text))
    if details.get("finished_at"):
        entries.append(
            TimelineEntry(str(details["finished_at"]), TEST_SOURCE, "info", "test finished")
        )
    return entries


def iso_utc(moment: datetime) -> str:
    """`2026-12-06T04:36:17.123Z`: the log records' timestamp format."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def merge(entries: Iterable[TimelineEntry]) -> list[TimelineEntry]:
    """Time order (by instant, whatever the stamp's precision or offset); entries without a
    readable time keep their place before the timed ones."""
    return sorted(entries, key=lambda entry: utc_instant(entry.at) or _NO_TIME)


_NO_TIME = datetime.min.replace(tzinfo=UTC)
