"""Testing resets while commands are sent and streams are open: 200/201/503 only, never a
deadlock or a 500, and the database is whole afterwards (real waitress, real database)."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable

import requests

from tests.backend.consistency import assert_consistent, assert_error_shape, no_unhandled_errors
from tests.fixtures.backend import served_app, testing_settings, wait_until

RESET = "/api/testing/reset"
SEND = {"command_type": "TestCommand", "behavior": {"type": "success"}, "payload": {"n": 1}}


def _run_threads(count: int, target: Callable[[], None]) -> list[threading.Thread]:
    threads = [threading.Thread(target=target, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads


def test_20_resets_against_10_senders_and_5_streams(make_migrated_database) -> None:
    url = make_migrated_database()
    resets_per_thread = 3
    statuses: Counter[tuple[str, int]] = Counter()
    refusals: list[requests.Response] = []
    failures: list[BaseException] = []
    stream_frames: Counter[int] = Counter()
    lock = threading.Lock()
    stop = threading.Event()

    def record(kind: str, response: requests.Response) -> None:
        with lock:
            statuses[(kind, response.status_code)] += 1
            if response.status_code == 503:
                refusals.append(response)

    with no_unhandled_errors(), served_app(testing_settings(url), threads=48) as server:
        barrier = threading.Barrier(20)

        def stream(index: int) -> None:
            try:
                with requests.get(
                    server.url + "/api/utils/version/stream", stream=True, timeout=30
                ) as response:
                    for line in response.iter_lines():
                        if line.startswith(b"event: "):
                            with lock:
                                stream_frames[index] += 1
                        if stop.is_set():
                            return
            except BaseException as exc:
                failures.append(exc)

        def sender() -> None:
            try:
                while not stop.is_set():
                    sent = requests.post(server.url + "/api/commands", json=SEND, timeout=30)
                    record("send", sent)
            except BaseException as exc:
                failures.append(exc)

        def resetter() -> None:
            try:
                barrier.wait(timeout=10)
                for _ in range(resets_per_thread):
                    record("reset", requests.post(server.url + RESET, timeout=60))
            except BaseException as exc:
                failures.append(exc)

        streams = [threading.Thread(target=stream, args=(i,), daemon=True) for i in range(5)]
        for thread in streams:
            thread.start()
        senders = _run_threads(10, sender)
        wait_until(lambda: statuses[("send", 201)] >= 10, 15, message="sends to flow")
        resetters = _run_threads(20, resetter)
        for thread in resetters:
            thread.join(timeout=120)
        stop.set()
        for thread in senders + streams:
            thread.join(timeout=30)
        assert not failures, failures
        assert all(not t.is_alive() for t in resetters + senders), "a client hung"
        # After the storm: the app still works and the database is whole.
        assert requests.post(server.url + "/api/commands", json=SEND, timeout=10).status_code == 201
        assert requests.get(server.url + "/api/health/readyz", timeout=5).status_code == 200

    kinds = {status for (_kind, status) in statuses}
    assert kinds <= {200, 201, 503}, statuses
    assert statuses[("reset", 200)] >= 2, statuses
    assert sum(n for (kind, _s), n in statuses.items() if kind == "reset") == 20 * resets_per_thread
    assert statuses[("send", 201)] > 10, statuses
    # A 503 says "a reset runs": never a deadlock or lock timeout turned into DATABASE_BUSY.
    codes = Counter(response.json()["code"] for response in refusals)
    assert set(codes) <= {"BUSY", "RESET_IN_PROGRESS"}, codes
    for response in refusals:
        assert_error_shape(response, 503, response.json()["code"])
    assert len(stream_frames) == 5 and min(stream_frames.values()) >= 2, stream_frames
    assert_consistent(url)


def test_a_reset_during_a_bulk_fails_the_task_clearly(make_migrated_database) -> None:
    url = make_migrated_database()
    test_id = f"bulk-{uuid.uuid4().hex[:8]}"
    with no_unhandled_errors(), served_app(testing_settings(url)) as server:
        started = requests.post(
            server.url + "/api/commands/bulk",
            json={**SEND, "count": 30_000},
            headers={"X-Test-Id": test_id},
            timeout=10,
        )
        assert started.status_code == 202, started.text
        task_id = started.json()["task_id"]
        status_url = f"{server.url}/api/tasks/{task_id}"

        def progressed() -> bool:
            last = requests.get(status_url, timeout=5).json()["last_event"]
            return last is not None

        wait_until(progressed, 30, message="the bulk to send its first chunk")
        assert requests.post(server.url + RESET, timeout=60).status_code == 200
        final = wait_until(
            lambda: (body := requests.get(status_url, timeout=5).json())["done"] and body,
            60,
            message="the bulk task to end",
        )
        last = final["last_event"]
        assert last["event_type"] == "task_failed", last
        assert last["data"]["error_type"] == "DatabaseResetDuringTask"
        assert "reset during the bulk send" in last["data"]["error"]
        assert "deadlock" not in last["data"]["error"]
    assert_consistent(url)
