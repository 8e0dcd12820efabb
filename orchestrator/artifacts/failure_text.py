"""How a failure and a run's times read in the report: the code frame without the message it
repeats, a human UTC time, and a duration as pytest prints it."""

from __future__ import annotations

import datetime as dt

from orchestrator.util import utc_instant

__all__ = ["code_frame", "human_time", "session_duration", "wall_seconds"]


def code_frame(longrepr: str, message: str) -> str:
    """pytest's failure text without its last `E` block when that block says exactly the
    message (shown once, above the frame); otherwise the text as it is."""
    lines = longrepr.splitlines()
    end = max((i for i, line in enumerate(lines) if _is_error_line(line)), default=-1)
    if end < 0 or not message.strip():
        return longrepr
    start = end
    while start > 0 and _is_error_line(lines[start - 1]):
        start -= 1
    block = [line[1:] for line in lines[start : end + 1]]
    if _normal(block) != _normal(message.splitlines()):
        return longrepr
    return "\n".join(lines[:start] + lines[end + 1 :])


def human_time(iso: str | None) -> str | None:
    """`2026-12-06 04:36:17 UTC` from an ISO 8601 stamp (None when it is not one)."""
    moment = utc_instant(iso)
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def session_duration(seconds: float) -> str:
    """As pytest's summary line says it: `12.34s`, or `75.20s (0:01:15)` from a minute on."""
    if seconds < 60:
        return f"{seconds:.2f}s"
    return f"{seconds:.2f}s ({dt.timedelta(seconds=int(seconds))})"


def wall_seconds(started: str | None, finished: str | None) -> float | None:
    """Seconds from one ISO stamp to another (None unless both are readable, in order)."""
    first, last = utc_instant(started), utc_instant(finished)
    if first is None or last is None or last < first:
        return None
    return (last - first).total_seconds()


def _is_error_line(line: str) -> bool:
    return line == "E" or line.startswith("E ")


def _normal(lines: list[str]) -> list[str]:
    return [" ".join(line.split()) for line in lines if line.strip()]
