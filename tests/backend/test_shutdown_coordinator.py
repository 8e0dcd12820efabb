"""ShutdownCoordinator ordering, deadlines and errors; TaskService fan-out, retention, shutdown."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from backend.services.scripted_task import scripted_task
from backend.services.task_service import (
    CLOSE,
    COMPLETED,
    FAILED,
    FINAL_EVENTS,
    PROGRESS,
    ProgressReporter,
    TaskService,
)
from backend.utils.errors import ServiceBusyException
from backend.utils.shutdown import LifetimeEvent, ShutdownCoordinator, Waiter
from tests.fixtures.backend import wait_until

# -- ShutdownCoordinator ---------------------------------------------------------------------


def recording_waiter(calls: list[str], name: str) -> Waiter:
    """A waiter that notes it ran and reports itself drained."""

    def wait(_timeout: float) -> bool:
        calls.append(f"wait {name}")
        return True

    return wait


def test_prepare_goes_out_before_waiters_and_shutdown_after():
    coordinator = ShutdownCoordinator(graceful_timeout=2.0)
    calls: list[str] = []
    coordinator.register_lifetime_notification(lambda event: calls.append(f"notify {event.value}"))
    coordinator.register_shutdown_waiter("first", recording_waiter(calls, "first"))
    coordinator.register_shutdown_waiter("second", recording_waiter(calls, "second"))

    report = coordinator.shutdown()

    assert calls == [
        "notify prepare_shutdown",
        "wait first",
        "wait second",
        "notify shutdown",
    ]
    assert report.drained == ["first", "second"]
    assert report.timed_out == [] and report.errors == []


def test_waiters_share_one_deadline_and_a_slow_one_is_reported_timed_out():
    coordinator = ShutdownCoordinator(graceful_timeout=0.6)
    given: dict[str, float] = {}
    never_set = threading.Event()

    def busy_for_a_while(timeout: float) -> bool:
        given["busy"] = timeout
        never_set.wait(0.2)  # the simulated drain work
        return True

    def slow(timeout: float) -> bool:
        given["slow"] = timeout
        return never_set.wait(timeout)  # never finishes: uses up the rest of the deadline

    def last(timeout: float) -> bool:
        given["last"] = timeout
        return True

    coordinator.register_shutdown_waiter("busy", busy_for_a_while)
    coordinator.register_shutdown_waiter("slow", slow)
    coordinator.register_shutdown_waiter("last", last)

    report = coordinator.shutdown()

    assert 0.5 < given["busy"] <= 0.6
    # The second waiter gets what the first left over, not the full timeout again.
    assert 0.2 < given["slow"] <= 0.6 - 0.2 + 0.01
    assert given["last"] < 0.05
    assert report.drained == ["busy", "last"]
    assert report.timed_out == ["slow"]
    assert 0.55 < report.seconds < 1.5


@pytest.mark.unhandled_errors_expected
def test_failing_waiter_and_notification_are_collected_and_the_rest_still_run():
    coordinator = ShutdownCoordinator(graceful_timeout=2.0)
    events: list[LifetimeEvent] = []
    ran: list[str] = []

    def broken_notification(event: LifetimeEvent) -> None:
        raise RuntimeError(f"cannot handle {event.value}")

    def broken_waiter(_timeout: float) -> bool:
        raise ValueError("boom")

    coordinator.register_lifetime_notification(broken_notification)
    coordinator.register_lifetime_notification(events.append)
    coordinator.register_shutdown_waiter("broken", broken_waiter)
    coordinator.register_shutdown_waiter("healthy", recording_waiter(ran, "healthy"))

    report = coordinator.shutdown()  # must not raise

    assert report.errors == [
        "prepare_shutdown: cannot handle prepare_shutdown",
        "broken: boom",
        "shutdown: cannot handle shutdown",
    ]
    assert ran == ["wait healthy"]
    assert report.drained == ["healthy"]
    assert "broken" not in report.timed_out
    assert events == [LifetimeEvent.PREPARE_SHUTDOWN, LifetimeEvent.SHUTDOWN]


def test_second_shutdown_waits_for_the_first_and_does_not_rerun_anything():
    coordinator = ShutdownCoordinator(graceful_timeout=5.0)
    notified: list[LifetimeEvent] = []
    entered, release = threading.Event(), threading.Event()
    waiter_calls = 0

    def gated(_timeout: float) -> bool:
        nonlocal waiter_calls
        waiter_calls += 1
        entered.set()
        return release.wait(5)

    coordinator.register_lifetime_notification(notified.append)
    coordinator.register_shutdown_waiter("gated", gated)
    first: list[Any] = []
    runner = threading.Thread(target=lambda: first.append(coordinator.shutdown()))
    runner.start()
    assert entered.wait(5), "the first shutdown never reached its waiter"
    assert coordinator.is_shutting_down()
    assert coordinator.wait_for_shutdown(0)

    second: list[Any] = []
    follower = threading.Thread(target=lambda: second.append(coordinator.shutdown()))
    follower.start()
    release.set()
    runner.join(5)
    follower.join(5)

    assert not runner.is_alive() and not follower.is_alive()
    assert waiter_calls == 1
    assert notified == [LifetimeEvent.PREPARE_SHUTDOWN, LifetimeEvent.SHUTDOWN]
    assert first[0].drained == ["gated"]
    assert second[0].drained == [] and second[0].timed_out == []
    assert coordinator.shutdown().drained == []  # a third call, after the fact
    assert waiter_calls == 1


# -- TaskService -----------------------------------------------------------------------------


@pytest.fixture
def coordinator() -> ShutdownCoordinator:
    return ShutdownCoordinator(graceful_timeout=5.0)


@pytest.fixture
def tasks(coordinator: ShutdownCoordinator) -> Iterator[TaskService]:
    service = TaskService(coordinator, max_workers=2)
    yield service
    coordinator.shutdown()  # drains whatever a test left running


def drain_until_final(subscription: queue.Queue[Any], timeout: float = 5.0) -> list[dict[str, Any]]:
    """Events from a subscription up to and including the task's final event."""
    deadline = time.perf_counter() + timeout
    events: list[dict[str, Any]] = []
    while True:
        remaining = deadline - time.perf_counter()
        try:
            item = subscription.get(timeout=max(remaining, 0.0))
        except queue.Empty:
            raise AssertionError(f"no final event within {timeout}s; got {events}") from None
        assert item is not CLOSE, f"subscription closed before the final event; got {events}"
        events.append(item)
        if item["event_type"] in FINAL_EVENTS:
            return events


def wait_done(tasks: TaskService, task_id: str) -> None:
    wait_until(
        lambda: (tasks.status(task_id) or {}).get("done"), 5, message=f"task {task_id} to finish"
    )


def test_late_subscriber_gets_the_whole_history(tasks: TaskService):
    task_id = tasks.start_task(scripted_task(3, 0, None), correlation_id="c-1", test_id="t-1")
    wait_done(tasks, task_id)

    subscription = tasks.subscribe(task_id)
    assert subscription is not None
    events = drain_until_final(subscription)

    assert [e["event_type"] for e in events] == [PROGRESS, PROGRESS, PROGRESS, COMPLETED]
    assert [e["data"].get("step") for e in events[:3]] == [1, 2, 3]
    assert events[-1]["data"] == {"result": {"steps": 3}}
    assert {e["task_id"] for e in events} == {task_id}


def test_subscribers_see_the_same_events_in_the_same_order(tasks: TaskService):
    gate = threading.Event()

    def gated_task(reporter: ProgressReporter) -> dict[str, Any]:
        reporter.progress("before gate", 0.25)
        assert gate.wait(5), "test never opened the gate"
        for index in range(10):
            reporter.progress(f"after gate {index}", 0.5 + index / 20)
        return {"ok": True}

    task_id = tasks.start_task(gated_task)
    early = tasks.subscribe(task_id)
    wait_until(
        lambda: (tasks.status(task_id) or {}).get("last_event"), 5, message="the first event"
    )
    middle = tasks.subscribe(task_id)  # joins with one event in history, the rest live
    gate.set()
    wait_done(tasks, task_id)
    late = tasks.subscribe(task_id)  # joins after the end: history only
    assert early is not None and middle is not None and late is not None

    streams = [drain_until_final(sub) for sub in (early, middle, late)]

    texts = [e["data"].get("text") for e in streams[0][:-1]]
    assert texts == ["before gate"] + [f"after gate {i}" for i in range(10)]
    assert streams[0][-1]["event_type"] == COMPLETED
    assert streams[1] == streams[0]
    assert streams[2] == streams[0]


def test_failing_task_ends_with_task_failed(tasks: TaskService):
    task_id = tasks.start_task(scripted_task(3, 0, fail_at_step=2))
    subscription = tasks.subscribe(task_id)
    assert subscription is not None

    events = drain_until_final(subscription)

    assert [e["event_type"] for e in events] == [PROGRESS, FAILED]
    assert events[-1]["data"] == {
        "error": "Scripted failure at step 2",
        "error_type": "ScriptedTaskFailure",
    }


def test_unknown_task_has_no_subscription_or_status(tasks: TaskService):
    assert tasks.subscribe("no-such-task") is None
    assert tasks.status("no-such-task") is None


def test_finished_tasks_are_swept_after_retention_but_running_ones_stay(
    coordinator: ShutdownCoordinator,
):
    tasks = TaskService(coordinator, max_workers=2, retention_seconds=0.3)
    gate = threading.Event()
    try:
        running_id = tasks.start_task(lambda _reporter: {"opened": gate.wait(10)})
        finished_id = tasks.start_task(scripted_task(1, 0, None))
        wait_done(tasks, finished_id)
        done_at = time.perf_counter()
        assert tasks.subscribe(finished_id) is not None, "swept before its retention expired"

        wait_until(lambda: tasks.subscribe(finished_id) is None, 5, message="the sweep")

        # done_at lags the real finish by at most one poll interval (0.05 s).
        assert time.perf_counter() - done_at >= 0.3 - 0.05
        assert tasks.subscribe(running_id) is not None  # unfinished tasks are never swept
    finally:
        gate.set()
        coordinator.shutdown()


def test_status_of_an_expired_task_is_none(coordinator: ShutdownCoordinator):
    tasks = TaskService(coordinator, max_workers=1, retention_seconds=0.2)
    try:
        task_id = tasks.start_task(scripted_task(1, 0, None))
        wait_done(tasks, task_id)
        wait_until(lambda: tasks.status(task_id) is None, 5, message="status to forget the task")
    finally:
        coordinator.shutdown()


def test_start_task_is_refused_once_shutdown_is_prepared_but_running_tasks_drain(
    coordinator: ShutdownCoordinator,
):
    tasks = TaskService(coordinator, max_workers=2)
    prepared, gate = threading.Event(), threading.Event()
    # Registered after TaskService, so this runs after the service stopped accepting work.
    coordinator.register_lifetime_notification(
        lambda event: prepared.set() if event is LifetimeEvent.PREPARE_SHUTDOWN else None
    )
    task_id = tasks.start_task(lambda _reporter: {"opened": gate.wait(10)})
    subscription = tasks.subscribe(task_id)
    assert subscription is not None
    reports: list[Any] = []
    shutdown = threading.Thread(target=lambda: reports.append(coordinator.shutdown()))
    shutdown.start()
    try:
        assert prepared.wait(5), "PREPARE_SHUTDOWN was never sent"
        with pytest.raises(ServiceBusyException) as refused:
            tasks.start_task(scripted_task(1, 0, None))
        assert refused.value.http_status == 503
        assert shutdown.is_alive(), "shutdown finished while a task was still running"
    finally:
        gate.set()
        shutdown.join(5)

    assert not shutdown.is_alive()
    assert reports[0].drained[:1] == ["TaskService"]
    final = drain_until_final(subscription)[-1]
    assert final["event_type"] == COMPLETED
    assert final["data"] == {"result": {"opened": True}}
    assert subscription.get(timeout=1) is CLOSE  # then the stream is told to close
