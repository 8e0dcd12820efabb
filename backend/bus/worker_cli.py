"""`python -m backend worker`: a reliable-cmd SyncWorker with heartbeats and graceful drain."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from dataclasses import replace
from types import FrameType
from typing import Any

import psycopg
from commandbus import RetryPolicy
from commandbus._core.pgmq_sql import PGMQ_NOTIFY_CHANNEL
from commandbus.sync import SyncWorker
from commandbus.sync.worker import ReceivedCommand
from psycopg import Connection
from psycopg_pool import ConnectionPool

from backend.bus.compat import apply_pgmq_compat
from backend.bus.completion import complete_in_one_statement, store_result
from backend.bus.handlers import DomainRegistry, TestCommandHandler
from backend.bus.heartbeat import Heartbeat
from backend.bus.log_context import CommandContextFilter, CommandIds
from backend.bus.pools import worker_pools
from backend.bus.worker_options import (
    LIVE,
    WorkerOptions,
    add_worker_arguments,
    resolve_options,
)
from backend.config import Settings
from backend.schemas.config import AppConfig
from backend.services.config_service import load_config
from backend.utils.logging_setup import configure_logging, skip_unused_record_fields

logger = logging.getLogger("backend.worker")

__all__ = ["add_worker_arguments", "run_worker"]


def run_worker(settings: Settings, args: argparse.Namespace) -> int:
    configure_logging(settings.log_level)
    skip_unused_record_fields()
    apply_pgmq_compat()
    try:
        with psycopg.connect(settings.database_url, connect_timeout=5) as conn:
            options = resolve_options(args, load_config(conn))
    except psycopg.Error as exc:
        print(
            f"backend worker: cannot read the worker config from DATABASE_URL ({exc}). "
            "Is the database up and migrated (python -m backend migrate)?",
            file=sys.stderr,
        )
        return 1
    return WorkerRuntime(settings, options).run()


class AppWorker(SyncWorker):
    """reliable-cmd's SyncWorker with four overrides of its private parts (reliable-cmd
    0.2.2, pinned by backend/bus/compat.py; one test each in tests/backend/test_bus_fork.py):

    - `_process_message`: learn the message's ids (`data.ids`) before the library logs
      "Received command", so that record carries them;
    - `_complete`: store the result, delete the message and finish the command in one
      statement (backend/bus/completion.py) instead of the library's four round trips
      plus the app's own;
    - `apply_live_settings`: set the three attributes the library reads per message;
    - `_run_with_notify`: the idle loop, replaced whole (see its docstring).
    """

    def __init__(
        self, *args: Any, ids: CommandIds, completions: ConnectionPool[Any], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.ids = ids
        self.completions = completions  # autocommit: the completion is one statement

    def _process_message(
        self, msg_id: int, message: dict[str, Any], conn: Connection[Any]
    ) -> ReceivedCommand | None:
        if isinstance(message, dict):
            self.ids.remember_message(message)
        return super()._process_message(msg_id, message, conn)

    def _run_with_notify(self, poll_interval: float) -> None:
        """The library's idle loop (pinned version, see backend/bus/compat.py), but each wait
        ends by itself after one notification: the library `break`s out of psycopg's
        notifies() generator, which then holds the connection's lock until it is collected,
        so a stop right after a notification hung on the listen connection's exit."""
        with self._pool.connection() as listen_conn:
            listen_conn.autocommit = True
            listen_conn.execute(f"LISTEN {PGMQ_NOTIFY_CHANNEL}_{self._queue_name}")
            while not self._stop_event.is_set():
                self._drain_queue()  # everything available, then wait
                if self._stop_event.is_set():
                    return
                for _ in listen_conn.notifies(timeout=poll_interval, stop_after=1):
                    pass

    def _complete(self, received: ReceivedCommand, result: dict[str, Any] | None = None) -> None:
        command = received.command
        if result is None or command.reply_to or received.metadata.batch_id is not None:
            if result is not None:
                with self.completions.connection() as conn:
                    store_result(conn, command, result)
            super()._complete(received, result=result)
            return
        with self.completions.connection() as conn:
            complete_in_one_statement(conn, command, received.msg_id, result)

    def apply_live_settings(self, options: WorkerOptions) -> None:
        """Use new retry and visibility settings from the next message on."""
        self._retry_policy = retry_policy(options)
        self._visibility_timeout = options.visibility_timeout
        self._statement_timeout = options.statement_timeout_ms


def retry_policy(options: WorkerOptions) -> RetryPolicy:
    return RetryPolicy(max_attempts=options.max_attempts, backoff_schedule=options.backoff)


class WorkerRuntime:
    """Owns the pool, the library's worker, the heartbeat and the signal handling."""

    def __init__(self, settings: Settings, options: WorkerOptions) -> None:
        self.settings = settings
        self.options = options
        self.pool, self.handler_pool = worker_pools(settings.database_url, options.concurrency)
        self.ids = ids = CommandIds()
        # The worker's completion stores a success's result (backend/bus/completion.py).
        self.handler = TestCommandHandler(self.handler_pool, ids, store_results=False)
        self.registry = DomainRegistry(options.domain, self.handler)
        # Library log lines about a command get that command's correlation and test ids.
        for handler in logging.getLogger().handlers:
            handler.addFilter(CommandContextFilter(ids))
        self.worker: AppWorker | None = None
        self.applied = options  # what the running worker uses (follows the stored config)
        self._stopping = threading.Event()
        self._finished = threading.Event()

    def run(self) -> int:
        options = self.options
        self.pool.open(wait=True, timeout=10)
        self.handler_pool.open(wait=True, timeout=10)
        self.worker = AppWorker(
            self.pool,
            options.domain,
            ids=self.ids,
            completions=self.handler_pool,
            registry=self.registry,
            visibility_timeout=options.visibility_timeout,
            retry_policy=retry_policy(options),
            statement_timeout=options.statement_timeout_ms,
        )
        worker = self.worker
        heartbeat = Heartbeat(
            self.pool, options, worker.health_status.to_dict, follow_config=self.follow_config
        )
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        heartbeat.start()
        logger.info(
            "Worker %s started (domain=%s concurrency=%d vt=%ss poll=%ss attempts=%d backoff=%s)",
            options.worker_id,
            options.domain,
            options.concurrency,
            options.visibility_timeout,
            options.poll_interval,
            options.max_attempts,
            options.backoff,
            extra={"worker_id": options.worker_id, "pid": os.getpid()},
        )
        try:
            if not self._stopping.is_set():  # a signal during start-up: don't start at all
                worker.run(concurrency=options.concurrency, poll_interval=options.poll_interval)
        finally:
            heartbeat.stop()
            self.handler_pool.close(timeout=2)
            self.pool.close(timeout=2)
            self._finished.set()
        logger.info("Worker %s exited cleanly", options.worker_id)
        return 0

    def follow_config(self, stored: AppConfig) -> dict[str, Any]:
        """Apply stored changes the worker can take live; report the rest as pending."""
        wanted = self.options.with_stored(stored)
        changed = sorted(n for n in LIVE if getattr(wanted, n) != getattr(self.applied, n))
        if changed and self.worker is not None:
            before = {name: getattr(self.applied, name) for name in changed}
            self.applied = replace(self.applied, **{n: getattr(wanted, n) for n in changed})
            self.worker.apply_live_settings(self.applied)
            logger.info(
                "Worker %s follows the stored config: %s",
                self.options.worker_id,
                ", ".join(f"{n} {before[n]} -> {getattr(self.applied, n)}" for n in changed),
                extra={"worker_id": self.options.worker_id},
            )
        return self.applied.report(pending=wanted)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        logger.info("Received %s: draining in-flight commands", signal.Signals(signum).name)
        threading.Thread(target=self._drain_then_stop, name="drain", daemon=True).start()

    def _wake_listener(self) -> None:
        """The library's idle loop waits up to poll_interval for a NOTIFY on its queue's
        channel: send one, so it sees the stop now (other workers just poll once more).
        `_queue_name` is the library's (pinned version, see backend/bus/compat.py)."""
        assert self.worker is not None
        channel = f"{PGMQ_NOTIFY_CHANNEL}_{self.worker._queue_name}"
        try:
            with self.pool.connection(timeout=1) as conn:
                conn.execute("SELECT pg_notify(%s, '')", (channel,))
        except Exception as exc:  # the loop still ends after its poll interval
            logger.info("Could not wake the worker loop (%s); it stops within a poll", exc)

    def _drain_then_stop(self) -> None:
        assert self.worker is not None
        # SyncWorker.run() clears its stop flag as it starts, so a stop() before that would be
        # lost: wait until the loop runs (or run() was skipped or has ended) before stopping.
        while not self.worker.is_running and not self._finished.wait(0.05):
            pass
        if not self._finished.is_set():
            self.worker.stop(timeout=self.options.drain_timeout)
            self._wake_listener()
        # The library's loop exits after its current wait; if a handler still hangs past
        # the bound, leave anyway: its message is redelivered after the visibility timeout.
        if not self._finished.wait(self.options.poll_interval + 3):
            logger.warning(
                "Drain bound exceeded; exiting with %d command(s) left for redelivery",
                self.worker.in_flight_count,
            )
            logging.shutdown()
            os._exit(0)
