"""One failed test's timeline: browser console events, access records and every service's
records merged in time order, each carrying the correlation id that links them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# A record whose extra fields hold these is an access record (one per request), whatever
# its logger: the timeline shows it as `access`, worded by `request_text`.
ACCESS_FIELDS = frozenset({"method", "path", "status"})


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
    """A browser console event as the e2e conftest records it (`type`, `at`, the JSON)."""
    details = {k: v for k, v in event.items() if k not in ("type", "at", "correlation_id")}
    if event.get("kind") == "api_call":
        text = request_text(event)
    else:
        text = str(event.get("message") or json.dumps(details, default=str))
    return TimelineEntry(
        at=event.get("at"),
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
    if ACCESS_FIELDS <= extra.keys():
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


def merge(entries: Iterable[TimelineEntry]) -> list[TimelineEntry]:
    """Time order; entries without a time keep their place before the timed ones."""
    return sorted(entries, key=lambda entry: entry.at or "")
