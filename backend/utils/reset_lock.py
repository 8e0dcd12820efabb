"""The reset gate: one testing reset at a time, and never at the same time as a write.

A reset drops the bus's schema, then the app's tables; a send locks the app's tables, then
the bus's. Run at once, the two deadlock. So writes that touch both (sends, bulk chunks,
command-type changes) hold the gate shared, and a reset holds it alone: it waits for the
writes in flight to finish, and writes that arrive during a reset wait for it to end (or
answer 503). A second reset while one runs is refused, not queued.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from backend.utils.errors import ServiceBusyException

# How long a write waits for a running reset before answering 503 (a reset takes ~1 s).
WRITE_WAIT_SECONDS = 10.0


class ResetLock:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._resetting = False
        self._writers = 0
        self._generation = 0

    @property
    def generation(self) -> int:
        """How many resets have started; a task that sees it change knows its data is gone."""
        with self._cond:
            return self._generation

    def acquire_reset(self) -> bool:
        """Take the gate for a reset if no reset runs; False when one already does.

        New writes wait from now on; call `wait_for_writers` before touching the database.
        """
        with self._cond:
            if self._resetting:
                return False
            self._resetting = True
            self._generation += 1
            return True

    def wait_for_writers(self, timeout: float) -> bool:
        """Wait until the writes in flight have finished; False after `timeout`."""
        with self._cond:
            return self._cond.wait_for(lambda: self._writers == 0, timeout=timeout)

    def release_reset(self) -> None:
        with self._cond:
            if not self._resetting:
                raise RuntimeError("release_reset() without a reset in progress")
            self._resetting = False
            self._cond.notify_all()

    def is_resetting(self) -> bool:
        with self._cond:
            return self._resetting

    @contextmanager
    def writing(self, wait: float = WRITE_WAIT_SECONDS) -> Iterator[int]:
        """Hold the gate shared for one write; yields the reset generation it runs in."""
        with self._cond:
            if not self._cond.wait_for(lambda: not self._resetting, timeout=wait):
                raise ServiceBusyException(
                    "A database reset is in progress; retry when it has finished",
                    retry_after=1,
                    error_code="RESET_IN_PROGRESS",
                )
            self._writers += 1
            generation = self._generation
        try:
            yield generation
        finally:
            with self._cond:
                self._writers -= 1
                self._cond.notify_all()
