"""reliable-cmd's SyncWorker alone, with a no-op handler: the baseline `bench_bus` compares to.

Run: `DATABASE_URL=... python -m benchmarks.library_worker [--concurrency 4] [--ready-file F]`.
Only the PGMQ compatibility fix of the backend is applied (without it nothing completes).
SIGTERM/SIGINT stop the worker after its in-flight commands.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from commandbus import HandlerRegistry
from commandbus.models import Command, HandlerContext
from commandbus.sync import SyncWorker
from psycopg_pool import ConnectionPool

from backend.bus.compat import apply_pgmq_compat


def no_op(_command: Command, _context: HandlerContext) -> None:
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--domain", default="test")
    parser.add_argument("--command-type", default="TestCommand")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--visibility-timeout", type=int, default=30)
    parser.add_argument("--poll-interval", type=float, default=1.0)
    parser.add_argument("--ready-file", type=Path, default=None)
    args = parser.parse_args(argv)

    apply_pgmq_compat()
    registry = HandlerRegistry()
    registry.register_sync(args.domain, args.command_type, no_op)
    # Same pool size as `python -m backend worker`, so only the handler and its extras differ.
    pool: ConnectionPool[Any] = ConnectionPool(
        os.environ["DATABASE_URL"], min_size=2, max_size=args.concurrency * 2 + 3, open=False
    )
    pool.open(wait=True, timeout=10)
    worker = SyncWorker(
        pool,
        args.domain,
        registry=registry,
        visibility_timeout=args.visibility_timeout,
        statement_timeout=min(25_000, args.visibility_timeout * 800),
    )

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=worker.stop, kwargs={"timeout": 10}, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.ready_file is not None:
        args.ready_file.write_text(f"{os.getpid()}\n")
    try:
        worker.run(concurrency=args.concurrency, poll_interval=args.poll_interval)
    finally:
        pool.close(timeout=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
