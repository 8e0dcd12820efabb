"""Fixtures for SSE contract tests against a real HTTP server.

`sse_server` is the backend under test: the app served by waitress in a background thread
(default), or a separately started backend named by `STACK_BACKEND_URL`; it is the plugin's
`backend_url` here. `sse_client_factory` opens strict SSE clients on it through the plugin's
`sse_client` and `start_task` starts scripted tasks; both send the test's id (the plugin's
`test_id` fixture) as X-Test-Id, so a failed test's log slice holds its requests
(`send_test_id=False` opens a bare client, for tests about the id's absence). When a test
fails, the evidence plugin keeps the transcript of every SSE client it opened in the
evidence folder's tests/<test-slug>/ (when the session has one).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import pytest
import requests

from orchestrator.pytest_plugin import TEST_ID_HEADER
from tests.fixtures.backend import served_app, testing_settings, wait_until
from tests.integration.sse_client_helper import SSEClient, SSEEvent

# Short intervals for the in-process server so the suite stays fast.
IN_PROCESS_HEARTBEAT_INTERVAL = 0.5
IN_PROCESS_IDLE_INTERVAL = 0.5
# A separately started backend in testing mode uses the backend's defaults unless told.
EXTERNAL_DEFAULT_INTERVAL = 5.0
READY_DEADLINE_SECONDS = 30.0
CLIENT_TIMEOUT_SECONDS = 10.0
TASK_DRAIN_SECONDS = 30.0

_reports = pytest.StashKey[dict[str, pytest.TestReport]]()


@dataclass(frozen=True)
class SSEServer:
    """The backend under test and the intervals the tests may assume."""

    url: str
    heartbeat_interval: float  # SSE_HEARTBEAT_INTERVAL (version stream heartbeats)
    idle_interval: float  # TASK_STREAM_IDLE_INTERVAL (task stream heartbeats)
    in_process: bool  # False when the server is the one named by STACK_BACKEND_URL

    @property
    def client_timeout(self) -> float:
        """Per-wait timeout for clients: 10 s, longer when the intervals are long."""
        return max(CLIENT_TIMEOUT_SECONDS, 3 * max(self.heartbeat_interval, self.idle_interval))


class SSEClientFactory(Protocol):
    def __call__(
        self,
        path: str,
        headers: Mapping[str, str] | None = None,
        *,
        strict: bool = True,
        timeout: float | None = None,
        send_test_id: bool = True,
    ) -> SSEClient: ...


class StartTask(Protocol):
    def __call__(
        self,
        steps: int,
        step_delay_ms: int,
        fail_at_step: int | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        send_test_id: bool = True,
    ) -> str: ...


def _interval_from_env(name: str) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return EXTERNAL_DEFAULT_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        raise pytest.UsageError(f"{name}={raw!r} is not a number of seconds.") from None
    if value <= 0:
        raise pytest.UsageError(f"{name}={raw!r} must be greater than 0.")
    return value


def _wait_ready(url: str, deadline: float) -> None:
    """Fail with a diagnosis unless `url` answers readyz 200 and has the testing endpoints."""

    def ready() -> bool:
        return requests.get(f"{url}/api/health/readyz", timeout=2).status_code == 200

    try:
        wait_until(ready, deadline, interval=0.2, message=f"{url}/api/health/readyz to answer 200")
    except AssertionError as exc:
        pytest.fail(
            f"STACK_BACKEND_URL={url} is not ready: {exc}. Start the backend "
            "(FLASK_ENV=testing python -m backend serve) on a migrated database, or unset "
            "STACK_BACKEND_URL to test an in-process server.",
            pytrace=False,
        )
    probe = requests.post(f"{url}/api/testing/tasks", json={}, timeout=5)
    if probe.status_code == 404:
        pytest.fail(
            f"{url} has no /api/testing endpoints: start it with FLASK_ENV=testing.",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def sse_server(request: pytest.FixtureRequest) -> Iterator[SSEServer]:
    """The backend under test: `STACK_BACKEND_URL`, or the app served in this process."""
    external = os.environ.get("STACK_BACKEND_URL", "").strip().rstrip("/")
    if external:
        _wait_ready(external, READY_DEADLINE_SECONDS)
        yield SSEServer(
            url=external,
            heartbeat_interval=_interval_from_env("STACK_SSE_HEARTBEAT_INTERVAL"),
            idle_interval=_interval_from_env("STACK_TASK_IDLE_INTERVAL"),
            in_process=False,
        )
        return
    database_url = request.getfixturevalue("make_migrated_database")()
    settings = testing_settings(
        database_url,
        sse_heartbeat_interval=IN_PROCESS_HEARTBEAT_INTERVAL,
        task_stream_idle_interval=IN_PROCESS_IDLE_INTERVAL,
    )
    with served_app(settings, start_timeout=READY_DEADLINE_SECONDS) as server:
        wait_until(
            lambda: requests.get(f"{server.url}/api/health/readyz", timeout=2).ok,
            READY_DEADLINE_SECONDS,
            message=f"{server.url}/api/health/readyz to answer 200",
        )
        yield SSEServer(
            url=server.url,
            heartbeat_interval=IN_PROCESS_HEARTBEAT_INTERVAL,
            idle_interval=IN_PROCESS_IDLE_INTERVAL,
            in_process=True,
        )


def with_test_id(
    test_id: str, headers: Mapping[str, str] | None, send_test_id: bool
) -> dict[str, str]:
    """`headers` plus X-Test-Id (unless the caller sends its own or asks for none)."""
    sent = {TEST_ID_HEADER: test_id} if send_test_id else {}
    return {**sent, **(headers or {})}


@pytest.fixture(scope="session")
def backend_url(sse_server: SSEServer) -> str:
    """The plugin's fixtures (`sse_client`, `api`) talk to the server under test."""
    return sse_server.url


@pytest.fixture
def sse_client_factory(sse_server: SSEServer, sse_client: Any) -> SSEClientFactory:
    """The plugin's `sse_client`, strict, waiting as long as this server's intervals need."""

    def open_client(
        path: str,
        headers: Mapping[str, str] | None = None,
        *,
        strict: bool = True,
        timeout: float | None = None,
        send_test_id: bool = True,
    ) -> SSEClient:
        client: SSEClient = sse_client(
            path,
            headers=dict(headers or {}),
            strict=strict,
            timeout=sse_server.client_timeout if timeout is None else timeout,
            send_test_id=send_test_id,
        )
        return client

    return open_client


@pytest.fixture
def start_task(sse_server: SSEServer, test_id: str) -> Iterator[StartTask]:
    """Start scripted tasks via POST /api/testing/tasks (sending X-Test-Id); waits for them
    to finish after."""
    started: list[str] = []

    def start(
        steps: int,
        step_delay_ms: int,
        fail_at_step: int | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        send_test_id: bool = True,
    ) -> str:
        body = {"steps": steps, "step_delay_ms": step_delay_ms, "fail_at_step": fail_at_step}
        response = requests.post(
            f"{sse_server.url}/api/testing/tasks",
            json=body,
            headers=with_test_id(test_id, headers, send_test_id),
            timeout=10,
        )
        assert response.status_code == 202, (
            f"POST /api/testing/tasks {body} answered {response.status_code}: {response.text}"
        )
        task_id: str = response.json()["task_id"]
        started.append(task_id)
        return task_id

    yield start
    # Leave no task running into the next test: the server's task pool is small.
    for task_id in started:
        wait_until_done(sse_server, task_id, TASK_DRAIN_SECONDS)


def task_status(server: SSEServer, task_id: str) -> dict[str, Any]:
    """GET /api/tasks/<id>: the task's last event and whether it is done."""
    response = requests.get(f"{server.url}/api/tasks/{task_id}", timeout=5)
    response.raise_for_status()
    status: dict[str, Any] = response.json()
    return status


def wait_until_done(server: SSEServer, task_id: str, timeout: float) -> dict[str, Any]:
    """Poll the task's status until it is done; returns the status."""

    def done() -> dict[str, Any] | None:
        status = task_status(server, task_id)
        return status if status["done"] else None

    result: dict[str, Any] = wait_until(done, timeout, message=f"task {task_id} to finish")
    return result


# -- assertions shared by the baseline tests ---------------------------------------------------


def names(events: list[SSEEvent]) -> list[str]:
    return [ev["event"] for ev in events]


def without_heartbeats(events: list[SSEEvent]) -> list[SSEEvent]:
    """Heartbeats may fall anywhere while a stream waits; order checks ignore them."""
    return [ev for ev in events if ev["event"] != "heartbeat"]


def nth(name: str, count: int) -> Callable[[SSEEvent], bool]:
    """Predicate for `events_until`: true at the `count`-th event called `name`."""
    seen = 0

    def match(event: SSEEvent) -> bool:
        nonlocal seen
        seen += event["event"] == name
        return seen >= count

    return match


def arrival_times(client: SSEClient, name: str) -> list[float]:
    """Seconds since connect at which the client received each `name` event."""
    return [e["t"] for e in client.transcript if e["kind"] == "event" and e["event"] == name]


def gaps(times: list[float]) -> list[float]:
    return [round(b - a, 4) for a, b in itertools.pairwise(times)]


def assert_iso_utc(value: Any) -> datetime:
    """`value` is an ISO 8601 timestamp in UTC (e.g. 2026-01-02T03:04:05.678Z)."""
    assert isinstance(value, str), f"timestamp {value!r} is not a string"
    stamp = datetime.fromisoformat(value)
    assert stamp.utcoffset() == timedelta(0), f"timestamp {value!r} is not UTC"
    return stamp


def assert_ended_after_close(client: SSEClient, events: list[SSEEvent]) -> None:
    """The last event is connection_close and then the server ended the response."""
    assert events, "the stream sent no events"
    assert events[-1]["event"] == "connection_close", names(events)
    assert names(events).count("connection_close") == 1, names(events)
    transcript = client.transcript
    last_event = max(i for i, entry in enumerate(transcript) if entry["kind"] == "event")
    after = transcript[last_event + 1 : last_event + 2]
    assert [entry["kind"] for entry in after] == ["end"], (
        f"the server did not end the response after connection_close: {after}"
    )
