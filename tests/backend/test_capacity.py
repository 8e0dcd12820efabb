"""Capacity: a real `python -m backend serve` keeps answering health probes within 1 s while
200 idle connections and a full set of event streams hold it; streams beyond the cap and
tasks beyond the pool are refused with 503 + Retry-After instead of hanging."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import pytest
import requests
from flask.testing import FlaskClient

from backend.config import RESERVED_THREADS, ConfigError, Settings
from tests.backend.consistency import assert_error_shape, no_unhandled_errors
from tests.fixtures.backend import BackendProcess, app_on, free_port, serve_args, wait_until

THREADS = 12
STREAM_LIMIT = THREADS - RESERVED_THREADS
PROBE_DEADLINE = 1.0  # seconds: readyz/healthz must answer within it


@pytest.fixture
def backend(
    backend_process: Callable[..., BackendProcess], make_migrated_database: Callable[[], str]
) -> Iterator[str]:
    port = free_port()
    proc = backend_process(
        serve_args(port),
        make_migrated_database(),
        WAITRESS_THREADS=str(THREADS),
        SSE_HEARTBEAT_INTERVAL="0.5",
    )
    url = f"http://127.0.0.1:{port}"
    wait_until(
        lambda: requests.get(f"{url}/api/health/healthz", timeout=1).ok,
        20,
        message=f"the backend at {url}\n{proc.log_text()[-2000:]}",
    )
    yield url
    assert "Traceback" not in proc.log_text(), proc.log_text()[-3000:]


@contextmanager
def idle_connections(url: str, count: int) -> Iterator[list[socket.socket]]:
    """`count` open TCP connections that send nothing, or only half a request."""
    host, port = url.removeprefix("http://").split(":")
    sockets = []
    try:
        for index in range(count):
            sock = socket.create_connection((host, int(port)), timeout=5)
            if index % 4 == 0:
                sock.sendall(b"GET /api/health/healthz HTTP/1.1\r\nHost: x\r\n")  # never ends
            sockets.append(sock)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def open_stream(url: str) -> requests.Response:
    response = requests.get(f"{url}/api/utils/version/stream", stream=True, timeout=10)
    if response.status_code == 200:
        next(response.iter_lines())  # the connection_open frame: the stream holds its thread
    return response


def probes_answer_fast(url: str) -> None:
    for path in ("/api/health/healthz", "/api/health/readyz"):
        started = time.perf_counter()
        response = requests.get(f"{url}{path}", timeout=PROBE_DEADLINE)
        assert response.status_code == 200, (path, response.text)
        assert time.perf_counter() - started < PROBE_DEADLINE


def test_probes_answer_under_idle_connections_and_a_full_stream_cap(backend: str) -> None:
    with ExitStack() as stack, idle_connections(backend, 200):
        streams = [open_stream(backend) for _ in range(STREAM_LIMIT)]
        for stream in streams:
            stack.callback(stream.close)
            assert stream.status_code == 200
        refused = open_stream(backend)
        error = assert_error_shape(refused, 503, "TOO_MANY_STREAMS")
        assert error["details"]["limit"] == STREAM_LIMIT
        for _ in range(5):
            probes_answer_fast(backend)
        # API calls still get threads too.
        assert requests.get(f"{backend}/api/stats", timeout=PROBE_DEADLINE).status_code == 200
        streams[0].close()
        # The closed stream's slot comes back: a new stream is admitted.
        replacement = wait_until(
            lambda: (r := open_stream(backend)).status_code == 200 and r,
            10,
            message="a freed stream slot",
        )
        stack.callback(replacement.close)


def test_stream_limit_must_stay_below_the_threads() -> None:
    env = {"DATABASE_URL": "postgresql://h/db", "WAITRESS_THREADS": "8", "SSE_STREAM_LIMIT": "8"}
    with pytest.raises(ConfigError, match="SSE_STREAM_LIMIT=8 must be below WAITRESS_THREADS=8"):
        Settings.from_env(env)
    assert Settings.from_env({**env, "SSE_STREAM_LIMIT": "3"}).stream_limit == 3
    assert Settings.from_env({"DATABASE_URL": "postgresql://h/db"}).stream_limit == 24


# -- the task pool ------------------------------------------------------------------------------


@pytest.fixture
def two_slot_client(make_migrated_database: Callable[[], str]) -> Iterator[FlaskClient]:
    from tests.fixtures.backend import testing_settings

    with app_on(testing_settings(make_migrated_database(), task_pool_size=2)) as app:
        yield app.test_client()


def test_a_full_task_pool_answers_busy_instead_of_queueing(two_slot_client: FlaskClient) -> None:
    client = two_slot_client
    long_task = {"steps": 1, "step_delay_ms": 1500}
    running = [client.post("/api/testing/tasks", json=long_task) for _ in range(2)]
    assert [r.status_code for r in running] == [202, 202]
    with no_unhandled_errors():
        refused = client.post("/api/testing/tasks", json=long_task)
        bulk = client.post(
            "/api/commands/bulk",
            json={"command_type": "TestCommand", "count": 3, "behavior": {"type": "success"}},
        )
    error = assert_error_shape(refused, 503, "TASKS_BUSY")
    assert error["details"]["task_pool_size"] == 2
    assert_error_shape(bulk, 503, "TASKS_BUSY")
    assert client.get("/api/commands").json["total"] == 0  # the refused bulk sent nothing
    # Once a task ends, a new one starts.
    wait_until(
        lambda: client.post("/api/testing/tasks", json={"steps": 1}).status_code == 202,
        10,
        message="a free task slot",
    )
