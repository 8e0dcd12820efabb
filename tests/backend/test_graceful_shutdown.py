"""`python -m backend serve` as a real process: SIGTERM/SIGINT drain open streams and tasks, exit 0.

A scripted task (20 steps x 100 ms) keeps TaskService busy, so the drain lasts long enough to
watch readiness and refusals while it runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from orchestrator.sse_client import SSEClient, SSEEvent
from tests.fixtures.backend import BackendProcess, free_port, serve_args

STEPS, STEP_DELAY_MS = 20, 100
EXIT_WITHIN = 15.0


def tail(proc: BackendProcess, lines: int = 30) -> str:
    return "\n".join(proc.log_text().splitlines()[-lines:])


def until(proc: BackendProcess, condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `condition` while the backend runs; fail at once if it exits, or after `timeout`."""
    deadline = time.perf_counter() + timeout
    last: Any = None
    while True:
        code = proc.process.poll() if proc.process is not None else None
        if code is not None:
            raise AssertionError(
                f"backend exited with {code} while waiting for {what} (last: {last!r});"
                f" log tail:\n{tail(proc)}"
            )
        try:
            value = condition()
        except requests.RequestException as exc:
            last = exc
        else:
            if value:
                return value
            last = value
        if time.perf_counter() > deadline:
            raise AssertionError(
                f"no {what} within {timeout}s (last: {last!r}); log tail:\n{tail(proc)}"
            )
        time.sleep(0.05)


def start_backend(
    backend_process: Callable[..., BackendProcess], database_url: str
) -> tuple[BackendProcess, str]:
    port = free_port()
    proc = backend_process(serve_args(port), database_url, SSE_HEARTBEAT_INTERVAL="0.5")
    url = f"http://127.0.0.1:{port}"
    until(
        proc,
        lambda: readyz_body(url, 200),
        20,
        "readyz 200 after start",
    )
    return proc, url


def start_scripted_task(url: str) -> str:
    response = requests.post(
        f"{url}/api/testing/tasks",
        json={"steps": STEPS, "step_delay_ms": STEP_DELAY_MS},
        timeout=5,
    )
    assert response.status_code == 202, response.text
    task_id: str = response.json()["task_id"]
    return task_id


def exit_code(proc: BackendProcess, timeout: float = EXIT_WITHIN) -> int:
    """The exit code; if the backend hangs, kill its process group and fail with its log."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    raise AssertionError(
        f"backend still running {timeout}s after the stop signal; log tail:\n{tail(proc)}"
    )


def readyz_body(url: str, status: int) -> dict[str, Any] | None:
    """The readyz body when it answers `status`, else None."""
    response = requests.get(f"{url}/api/health/readyz", timeout=2)
    return response.json() if response.status_code == status else None


def opened(client: SSEClient, until_event: str = "connection_open") -> SSEClient:
    events = client.events_until(until_event)
    assert events[0]["event"] == "connection_open", events
    return client


def assert_closed_once(events: list[SSEEvent], reason: str, stream: str) -> None:
    """The stream's last event is its only connection_close, with `reason`."""
    names = [ev["event"] for ev in events]
    assert names[-1:] == ["connection_close"], f"{stream} stream did not end with a close: {names}"
    assert names.count("connection_close") == 1, f"{stream} stream: {names}"
    assert events[-1]["data"]["reason"] == reason, f"{stream} stream: {events[-1]}"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_closes_every_stream_drains_the_task_and_exits_0(
    backend_process, make_migrated_database, signum
):
    proc, url = start_backend(backend_process, make_migrated_database())
    task_id = start_scripted_task(url)
    version = opened(SSEClient(f"{url}/api/utils/version/stream", timeout=10), "version")
    logs = opened(SSEClient(f"{url}/api/testing/logs/stream", timeout=10))
    task = opened(SSEClient(f"{url}/api/tasks/{task_id}/stream", timeout=10))
    try:
        proc.signal(signum)
        signalled = time.perf_counter()
        version_tail = version.collect_until_close(timeout=10)
        log_tail = logs.collect_until_close(timeout=10)
        task_tail = task.collect_until_close(timeout=10)
    finally:
        for client in (version, logs, task):
            client.close()

    assert_closed_once(version_tail, "shutdown", "version")
    assert_closed_once(log_tail, "shutdown", "log")
    # The task ran to its end during the drain; its stream closed after the final event.
    task_events = [ev["data"] for ev in task_tail if ev["event"] == "task_event"]
    assert [e["event_type"] for e in task_events] == ["progress_update"] * STEPS + [
        "task_completed"
    ], task_tail
    assert task_events[-1]["data"] == {"result": {"steps": STEPS}}
    assert_closed_once(task_tail, "task_completed", "task")
    code = exit_code(proc)
    assert code == 0, f"exit code {code}; log tail:\n{tail(proc)}"
    assert time.perf_counter() - signalled < EXIT_WITHIN
    log = proc.log_text()
    assert f"Received {signal.Signals(signum).name}: shutting down gracefully" in log
    assert "timed out" not in log, tail(proc)
    assert "Backend stopped" in log


def test_while_draining_readyz_is_503_and_new_tasks_are_refused(
    backend_process, make_migrated_database
):
    proc, url = start_backend(backend_process, make_migrated_database())
    task_id = start_scripted_task(url)

    proc.signal(signal.SIGTERM)
    not_ready = until(proc, lambda: readyz_body(url, 503), 5, "readyz 503 during the drain")
    refused = requests.post(f"{url}/api/testing/tasks", json={"steps": 1}, timeout=5)
    status = requests.get(f"{url}/api/tasks/{task_id}", timeout=5).json()
    code = exit_code(proc)

    assert not_ready["status"] == "not_ready"
    assert not_ready["failed"] == ["shutting_down"]
    assert not_ready["checks"]["shutting_down"]["ok"] is False
    assert refused.status_code == 503, refused.text
    assert refused.json()["code"] == "BUSY"
    assert refused.headers["Retry-After"] == "5"
    assert status["done"] is False, "the task ended before the drain could be observed"
    assert code == 0, f"exit code {code}; log tail:\n{tail(proc)}"
