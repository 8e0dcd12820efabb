"""Our streams through third-party SSE clients and a real browser EventSource.

sseclient-py and httpx-sse read `retry:` and `id:` as the spec says; the log stream resumes
from Last-Event-ID without a gap; a browser stops reconnecting to a finished or unknown task
and never sees a server event in its `error` listener.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest
import requests
import sseclient
from httpx_sse import connect_sse
from playwright.sync_api import sync_playwright

from backend.utils.sse import RECONNECT_DELAY_MS, STREAM_ERROR
from orchestrator.browser import find_chromium
from tests.fixtures.backend import LiveServer, served_app, testing_settings, wait_until

logger = logging.getLogger("tests.sse_clients")


@pytest.fixture(scope="module")
def server(migrated_database_url: str) -> Iterator[LiveServer]:
    settings = testing_settings(migrated_database_url, sse_heartbeat_interval=0.3)
    with served_app(settings, threads=16) as live:
        yield live


def finished_task(server: LiveServer, steps: int = 2) -> str:
    started = requests.post(
        f"{server.url}/api/testing/tasks", json={"steps": steps, "step_delay_ms": 0}, timeout=10
    )
    assert started.status_code == 202, started.text
    task_id = started.json()["task_id"]
    wait_until(
        lambda: requests.get(f"{server.url}/api/tasks/{task_id}", timeout=5).json()["done"],
        10,
        message="the scripted task to finish",
    )
    return task_id


# -- sseclient-py ----------------------------------------------------------------------------


def test_sseclient_py_reads_ids_retry_and_the_close(server: LiveServer) -> None:
    task_id = finished_task(server, steps=2)
    url = f"{server.url}/api/tasks/{task_id}/stream"
    with requests.get(url, stream=True, timeout=10) as response:
        events = list(sseclient.SSEClient(cast(Any, response)).events())
    assert [e.event for e in events] == [
        "connection_open", "task_event", "task_event", "task_event", "connection_close",
    ]  # fmt: skip
    assert int(str(events[0].retry)) == RECONNECT_DELAY_MS
    assert [e.id for e in events[1:4]] == ["1", "2", "3"]
    # What the client would send on reconnect: nothing left, so 204 (a browser stops).
    again = requests.get(url, headers={"Last-Event-ID": events[3].id}, timeout=10)
    assert again.status_code == 204


def test_sseclient_py_sees_stream_error_for_an_unknown_task(server: LiveServer) -> None:
    url = f"{server.url}/api/tasks/{uuid.uuid4().hex}/stream"
    with requests.get(url, stream=True, timeout=10) as response:
        events = list(sseclient.SSEClient(cast(Any, response)).events())
    assert [e.event for e in events] == ["connection_open", STREAM_ERROR, "connection_close"]
    again = requests.get(url, headers={"Last-Event-ID": events[1].id}, timeout=10)
    assert again.status_code == 404


# -- httpx-sse: the log stream resumes without a gap ------------------------------------------


def _read_logs(client: httpx.Client, url: str, until: str, headers: dict[str, str]) -> list:
    """`log` events (id, message) up to the one whose message is `until`."""
    seen = []
    with connect_sse(client, "GET", url, headers=headers) as source:
        assert source.response.status_code == 200
        for sse in source.iter_sse():
            if sse.event == "log":
                seen.append((sse.id, sse.json()["message"]))
                if sse.json()["message"] == until:
                    return seen
    raise AssertionError(f"stream ended before {until!r}: {seen}")


def test_httpx_sse_log_stream_resumes_from_last_event_id(server: LiveServer) -> None:
    marker = uuid.uuid4().hex[:8]
    url = f"{server.url}/api/testing/logs/stream"
    with httpx.Client(timeout=10) as client:
        with connect_sse(client, "GET", url) as source:
            events = source.iter_sse()
            opening = next(events)
            assert opening.event == "connection_open" and opening.retry == RECONNECT_DELAY_MS
            logger.info("%s before", marker)
            first = next(e for e in events if e.event == "log" and marker in e.data)
        # Disconnected: these records happen while nobody listens.
        for index in range(5):
            logger.info("%s missed %d", marker, index)
        logger.info("%s after", marker)
        resumed = _read_logs(client, url, f"{marker} after", {"Last-Event-ID": first.id})
    mine = [message for _id, message in resumed if marker in message]
    assert mine == [*(f"{marker} missed {i}" for i in range(5)), f"{marker} after"]
    sequence = [int(event_id.rpartition("-")[2]) for event_id, _message in resumed]
    assert sequence == list(range(int(first.id.rpartition("-")[2]) + 1, sequence[-1] + 1))


def test_an_id_from_another_process_resumes_nothing(server: LiveServer) -> None:
    marker = uuid.uuid4().hex[:8]
    logger.info("%s old", marker)
    url = f"{server.url}/api/testing/logs/stream"
    with (
        httpx.Client(timeout=10) as client,
        connect_sse(client, "GET", url, headers={"Last-Event-ID": "deadbeef-1"}) as source,
    ):
        events = source.iter_sse()
        assert next(events).event == "connection_open"
        logger.info("%s new", marker)
        first_log = next(e for e in events if e.event == "log" and marker in e.data)
    assert first_log.json()["message"] == f"{marker} new"


# -- a browser EventSource -------------------------------------------------------------------

FOLLOW = """
(path) => new Promise((resolve) => {
  const seen = { opens: 0, finals: 0, serverErrors: 0, connectionErrors: 0, ids: [] };
  const source = new EventSource(path);
  source.addEventListener("connection_open", () => { seen.opens += 1; });
  source.addEventListener("task_event", (m) => {
    seen.ids.push(m.lastEventId);
    if (JSON.parse(m.data).event_type === "task_completed") { seen.finals += 1; }
  });
  source.addEventListener("error", (e) => {
    if (e instanceof MessageEvent) { seen.serverErrors += 1; } else { seen.connectionErrors += 1; }
    if (source.readyState === EventSource.CLOSED) { resolve(seen); }
  });
  setTimeout(() => { seen.gaveUp = true; source.close(); resolve(seen); }, 15000);
})
"""


@pytest.fixture(scope="module")
def page(server: LiveServer):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(headless=True, **find_chromium().launch_args())
        try:
            page = browser.new_page()
            page.goto(f"{server.url}/api/health/healthz")
            yield page
        finally:
            browser.close()


def test_a_browser_stops_reconnecting_to_a_finished_task(server: LiveServer, page) -> None:
    task_id = finished_task(server, steps=2)
    seen = page.evaluate(FOLLOW, f"/api/tasks/{task_id}/stream")
    assert "gaveUp" not in seen, seen  # the browser closed the source itself
    assert seen["opens"] == 1, seen  # one replay, then 204 on the reconnect
    assert seen["finals"] == 1, seen
    assert seen["ids"] == ["1", "2", "3"], seen
    assert seen["serverErrors"] == 0, seen


def test_a_browser_stops_reconnecting_to_an_unknown_task(server: LiveServer, page) -> None:
    seen = page.evaluate(FOLLOW, f"/api/tasks/{uuid.uuid4().hex}/stream")
    assert "gaveUp" not in seen, seen
    assert seen["opens"] == 1, seen  # then 404 on the reconnect
    assert seen["serverErrors"] == 0, seen  # stream_error is not the browser's `error`
