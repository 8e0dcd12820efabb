"""Worker settings: seed defaults, then the stored config, then command-line flags (flags win).

A running worker re-reads the stored config on every heartbeat (`with_stored`): fields no
flag fixed follow it, live where the bus allows (retries, backoff, visibility timeout), and
are reported as needing a restart where it does not (concurrency, poll interval).
"""

from __future__ import annotations

import argparse
import os
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from backend.bus import DOMAIN
from backend.schemas.config import AppConfig

# The settings a stored config can provide, and those a running worker can change live.
CONFIGURABLE = ("concurrency", "visibility_timeout", "poll_interval", "max_attempts", "backoff")
LIVE = frozenset({"visibility_timeout", "max_attempts", "backoff"})


@dataclass(frozen=True)
class WorkerOptions:
    domain: str
    concurrency: int
    visibility_timeout: int
    poll_interval: float
    max_attempts: int
    backoff: list[int]
    drain_timeout: float
    heartbeat_interval: float
    worker_id: str
    ready_file: Path | None
    flagged: frozenset[str] = field(default_factory=frozenset)  # fields given as flags

    def with_stored(self, stored: AppConfig) -> WorkerOptions:
        """These options with every field no flag fixed taken from `stored`."""
        values = stored_values(stored)
        return replace(self, **{k: v for k, v in values.items() if k not in self.flagged})

    def report(self, pending: WorkerOptions | None = None) -> dict[str, Any]:
        """Effective settings, where each came from, and stored changes awaiting a restart."""
        restart = {}
        if pending is not None:
            restart = {
                name: getattr(pending, name)
                for name in CONFIGURABLE
                if getattr(pending, name) != getattr(self, name)
            }
        return {
            "effective": {name: getattr(self, name) for name in CONFIGURABLE},
            "sources": {
                name: ("flag" if name in self.flagged else "stored") for name in CONFIGURABLE
            },
            "restart_required": restart,
        }

    @property
    def statement_timeout_ms(self) -> int:
        """Below the visibility timeout, as the library requires."""
        return max(100, min(25_000, int(self.visibility_timeout * 1000 * 0.8)))


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--domain", default=DOMAIN, help="domain whose queue to process")
    parser.add_argument("--concurrency", type=_positive_int, help="commands processed at once")
    parser.add_argument("--visibility-timeout", type=_positive_int, help="seconds")
    parser.add_argument("--poll-interval", type=_positive_float, help="seconds")
    parser.add_argument("--max-attempts", type=_positive_int, help="attempts before the TSQ")
    parser.add_argument(
        "--backoff", type=_schedule, help="seconds before each retry, e.g. 1,2,4 (or 0)"
    )
    parser.add_argument("--drain-timeout", type=_positive_float, default=10.0)
    parser.add_argument("--heartbeat-interval", type=_positive_float, default=1.0)
    parser.add_argument("--worker-id", default=None)
    parser.add_argument("--ready-file", type=Path, default=None)


def stored_values(stored: AppConfig) -> dict[str, Any]:
    """The worker settings a stored config gives (the CONFIGURABLE ones)."""
    worker, retry = stored.worker, stored.retry
    return {
        "concurrency": worker.concurrency,
        "visibility_timeout": worker.visibility_timeout,
        "poll_interval": worker.poll_interval,
        "max_attempts": retry.max_attempts,
        "backoff": retry.backoff_schedule(),
    }


def resolve_options(args: argparse.Namespace, stored: AppConfig) -> WorkerOptions:
    """Flags that were given win over the stored config; the rest come from it."""
    flags = {name: getattr(args, name) for name in CONFIGURABLE}
    flagged = frozenset(name for name, value in flags.items() if value is not None)
    values = {**stored_values(stored), **{k: v for k, v in flags.items() if v is not None}}
    return WorkerOptions(
        domain=args.domain,
        drain_timeout=args.drain_timeout,
        heartbeat_interval=args.heartbeat_interval,
        worker_id=args.worker_id or f"{socket.gethostname()}-{os.getpid()}",
        ready_file=args.ready_file,
        flagged=flagged,
        **values,
    )


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{raw!r} must be at least 1")
    return value


def _positive_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{raw!r} must be greater than 0")
    return value


def _schedule(raw: str) -> list[int]:
    try:
        values = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{raw!r} is not a comma-separated list of whole seconds"
        ) from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"{raw!r}: give one or more seconds >= 0")
    return values
