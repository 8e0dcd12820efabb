"""Graceful shutdown: lifetime notifications, then named waiters drained within a deadline."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

logger = logging.getLogger(__name__)


class LifetimeEvent(Enum):
    PREPARE_SHUTDOWN = "prepare_shutdown"
    SHUTDOWN = "shutdown"


Notification = Callable[[LifetimeEvent], None]
Waiter = Callable[[float], bool]


@dataclass
class ShutdownReport:
    """What happened during shutdown: which waiters finished in time, how long it took."""

    drained: list[str] = field(default_factory=list)
    timed_out: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


class ShutdownCoordinator:
    """Tells components that shutdown starts, then waits for each of them, within a bound."""

    def __init__(self, graceful_timeout: float = 10.0) -> None:
        self.graceful_timeout = graceful_timeout
        self._notifications: list[Notification] = []
        self._waiters: list[tuple[str, Waiter]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._done = threading.Event()

    def register_lifetime_notification(self, callback: Notification) -> None:
        with self._lock:
            self._notifications.append(callback)

    def register_shutdown_waiter(self, name: str, waiter: Waiter) -> None:
        with self._lock:
            self._waiters.append((name, waiter))

    def is_shutting_down(self) -> bool:
        return self._stopping.is_set()

    def wait_for_shutdown(self, timeout: float | None) -> bool:
        """Block up to `timeout` seconds; True once shutdown has begun."""
        return self._stopping.wait(timeout)

    def shutdown(self) -> ShutdownReport:
        """Run the shutdown sequence once; later calls wait for the first and return empty."""
        with self._lock:
            if self._stopping.is_set():
                first = False
            else:
                self._stopping.set()
                first = True
            notifications = list(self._notifications)
            waiters = list(self._waiters)
        if not first:
            self._done.wait(self.graceful_timeout + 1)
            return ShutdownReport()
        started = time.perf_counter()
        report = ShutdownReport()
        logger.info("Shutdown: preparing (%d waiters)", len(waiters))
        self._notify(notifications, LifetimeEvent.PREPARE_SHUTDOWN, report)
        # Each waiter gets what is left of the overall deadline.
        deadline = started + self.graceful_timeout
        for name, waiter in waiters:
            remaining = max(0.0, deadline - time.perf_counter())
            try:
                finished = waiter(remaining)
            except Exception as exc:
                logger.exception("Shutdown waiter %s failed", name)
                report.errors.append(f"{name}: {exc}")
                continue
            (report.drained if finished else report.timed_out).append(name)
        self._notify(notifications, LifetimeEvent.SHUTDOWN, report)
        report.seconds = time.perf_counter() - started
        logger.info(
            "Shutdown: complete in %.3fs (drained=%s timed_out=%s)",
            report.seconds,
            report.drained,
            report.timed_out,
        )
        self._done.set()
        return report

    @staticmethod
    def _notify(
        notifications: list[Notification], event: LifetimeEvent, report: ShutdownReport
    ) -> None:
        for callback in notifications:
            try:
                callback(event)
            except Exception as exc:
                logger.exception("Shutdown notification failed for %s", event.value)
                report.errors.append(f"{event.value}: {exc}")
