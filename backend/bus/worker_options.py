"""Worker settings: seed defaults, then the stored config, then command-line flags (flags win)."""

from __future__ import annotations

import argparse
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from backend.bus import DOMAIN
from backend.schemas.config import AppConfig


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


def resolve_options(args: argparse.Namespace, stored: AppConfig) -> WorkerOptions:
    """Flags that were given win over the stored config; the rest come from it."""
    worker, retry = stored.worker, stored.retry
    return WorkerOptions(
        domain=args.domain,
        concurrency=args.concurrency if args.concurrency is not None else worker.concurrency,
        visibility_timeout=(
            args.visibility_timeout
            if args.visibility_timeout is not None
            else worker.visibility_timeout
        ),
        poll_interval=args.poll_interval
        if args.poll_interval is not None
        else worker.poll_interval,
        max_attempts=args.max_attempts if args.max_attempts is not None else retry.max_attempts,
        backoff=args.backoff if args.backoff is not None else retry.backoff_schedule(),
        drain_timeout=args.drain_timeout,
        heartbeat_interval=args.heartbeat_interval,
        worker_id=args.worker_id or f"{socket.gethostname()}-{os.getpid()}",
        ready_file=args.ready_file,
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
