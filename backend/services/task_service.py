"""Background tasks in a bounded pool, with their events fanned out to any number of subscribers.

A subscriber first receives every event the task already emitted, then live ones, so all
subscribers see the same events in the same order, and a late one still gets the final event.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from backend.utils.correlation import correlation_scope
from backend.utils.errors import BusinessLogicException, ServiceBusyException
from backend.utils.shutdown import LifetimeEvent, ShutdownCoordinator
from backend.utils.sse import utc_now_iso

logger = logging.getLogger(__name__)

PROGRESS = "progress_update"
COMPLETED = "task_completed"
FAILED = "task_failed"
FINAL_EVENTS = frozenset({COMPLETED, FAILED})

CLOSE = object()  # pushed to subscribers when the service shuts down


class TaskAborted(RuntimeError):
    """A task ended early for a reason it can state (e.g. a reset dropped its tables).

    It fails the task with its message; the log gets a warning, not a traceback."""


class ProgressReporter:
    """Handed to a task function so it can report progress."""

    def __init__(self, task: _Task) -> None:
        self._task = task

    @property
    def task_id(self) -> str:
        return self._task.task_id

    def progress(self, text: str, fraction: float, **data: Any) -> None:
        self._task.publish(PROGRESS, {"text": text, "progress": round(fraction, 4), **data})


TaskFunction = Callable[[ProgressReporter], dict[str, Any] | None]


@dataclass(eq=False)
class _Task:
    task_id: str
    history: list[dict[str, Any]] = field(default_factory=list)
    subscribers: list[queue.Queue[Any]] = field(default_factory=list)
    finished_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, event_type: str, data: dict[str, Any]) -> None:
        event = {
            "event_type": event_type,
            "task_id": self.task_id,
            "timestamp": utc_now_iso(),
            "data": data,
        }
        with self.lock:
            self.history.append(event)
            if event_type in FINAL_EVENTS:
                self.finished_at = time.perf_counter()
            subscribers = list(self.subscribers)
        for sub in subscribers:
            sub.put(event)


class TaskService:
    def __init__(
        self,
        coordinator: ShutdownCoordinator,
        max_workers: int = 4,
        retention_seconds: float = 300.0,
    ) -> None:
        self.retention_seconds = retention_seconds
        self.max_workers = max_workers
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="task")
        self._tasks: dict[str, _Task] = {}
        self._lock = threading.Lock()
        self._running = 0
        self._idle = threading.Condition(self._lock)
        self._accepting = True
        coordinator.register_lifetime_notification(self._on_lifetime_event)
        coordinator.register_shutdown_waiter("TaskService", self._wait_for_tasks)

    def start_task(
        self,
        function: TaskFunction,
        correlation_id: str | None = None,
        test_id: str | None = None,
    ) -> str:
        """Run `function` on a free pool thread; returns the task id at once.

        With every thread busy the task is refused (503 TASKS_BUSY), never queued behind
        long tasks where it would be accepted and not start.
        """
        task = _Task(task_id=uuid.uuid4().hex)
        with self._lock:
            if not self._accepting:
                raise ServiceBusyException("The server is shutting down; no new tasks")
            if self._running >= self.max_workers:
                raise ServiceBusyException(
                    f"All {self.max_workers} background task slots are busy (TASK_POOL_SIZE); "
                    "retry when a running task has finished",
                    retry_after=2,
                    error_code="TASKS_BUSY",
                    details={"task_pool_size": self.max_workers},
                )
            self._sweep_locked()
            self._tasks[task.task_id] = task
            self._running += 1
        self._executor.submit(self._run, task, function, correlation_id, test_id)
        return task.task_id

    def subscribe(self, task_id: str, after: int = 0) -> queue.Queue[Any] | None:
        """A queue that receives the task's events from number `after + 1` on (1-based: its
        past ones, then live ones); None for unknown ids."""
        task = self._live_task(task_id)
        if task is None:
            return None
        subscription: queue.Queue[Any] = queue.Queue()
        with task.lock:
            for event in task.history[after:]:
                subscription.put(event)
            task.subscribers.append(subscription)
        return subscription

    def progress_of(self, task_id: str) -> tuple[int, bool] | None:
        """(events emitted so far, finished?) of a known task; None for unknown ids."""
        task = self._live_task(task_id)
        if task is None:
            return None
        with task.lock:
            return len(task.history), task.finished_at is not None

    def unsubscribe(self, task_id: str, subscription: queue.Queue[Any]) -> None:
        with self._lock:
            task = self._tasks.get(task_id)
        if task is not None:
            with task.lock:
                if subscription in task.subscribers:
                    task.subscribers.remove(subscription)

    def status(self, task_id: str) -> dict[str, Any] | None:
        task = self._live_task(task_id)
        if task is None:
            return None
        with task.lock:
            last = task.history[-1] if task.history else None
            done = task.finished_at is not None
        return {"task_id": task_id, "done": done, "last_event": last}

    def _run(
        self,
        task: _Task,
        function: TaskFunction,
        correlation_id: str | None,
        test_id: str | None,
    ) -> None:
        try:
            with correlation_scope(correlation_id, test_id):
                try:
                    result = function(ProgressReporter(task))
                except (TaskAborted, BusinessLogicException) as exc:
                    logger.warning("Task %s stopped: %s", task.task_id, exc)
                    task.publish(FAILED, {"error": str(exc), "error_type": type(exc).__name__})
                except Exception as exc:
                    logger.exception("Task %s failed", task.task_id)
                    task.publish(FAILED, {"error": str(exc), "error_type": type(exc).__name__})
                else:
                    task.publish(COMPLETED, {"result": result or {}})
        finally:
            with self._lock:
                self._running -= 1
                self._idle.notify_all()

    def _live_task(self, task_id: str) -> _Task | None:
        """The task with that id, after forgetting expired ones; None if there is none."""
        with self._lock:
            self._sweep_locked()
            return self._tasks.get(task_id)

    def _sweep_locked(self) -> None:
        now = time.perf_counter()
        expired = [
            task_id
            for task_id, task in self._tasks.items()
            if task.finished_at is not None and now - task.finished_at > self.retention_seconds
        ]
        for task_id in expired:
            del self._tasks[task_id]

    def _on_lifetime_event(self, event: LifetimeEvent) -> None:
        if event is LifetimeEvent.PREPARE_SHUTDOWN:
            with self._lock:
                self._accepting = False

    def _wait_for_tasks(self, timeout: float) -> bool:
        with self._lock:
            finished = self._idle.wait_for(lambda: self._running == 0, timeout=timeout)
            tasks = list(self._tasks.values())
        # Subscribers of tasks that are done already have their final event; close the rest.
        for task in tasks:
            with task.lock:
                subscribers = list(task.subscribers)
            for sub in subscribers:
                sub.put(CLOSE)
        self._executor.shutdown(wait=False, cancel_futures=True)
        return finished
