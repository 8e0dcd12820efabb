"""A non-blocking lock: a second reset while one runs is refused, not queued."""

from __future__ import annotations

import threading


class ResetLock:
    def __init__(self) -> None:
        self._lock = threading.Lock()

    def acquire_reset(self) -> bool:
        """Take the lock if free; False when a reset is already running."""
        return self._lock.acquire(blocking=False)

    def release_reset(self) -> None:
        self._lock.release()

    def is_resetting(self) -> bool:
        return self._lock.locked()
