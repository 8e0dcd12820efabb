"""Real worker processes (`python -m backend worker`) on a real database.

The behavior tests share two workers and one database for the whole module (each test's
commands are its own). SIGTERM, SIGKILL and reset tests get their own database, app and
workers, because they stop or disturb them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from commandbus.models import Command, HandlerContext
from commandbus.sync import SyncCommandBus
from flask.testing import FlaskClient
from psycopg_pool import ConnectionPool
from werkzeug.test import TestResponse

from backend.app import create_app
from backend.bus.handlers import TestCommandHandler
from backend.services.container import Container
from backend.services.testing_service import TestingService
from backend.utils.reset_lock import ResetLock
from tests.fixtures import backend as fixtures
from tests.fixtures.backend import REPO_ROOT, BackendProcess, wait_until

VT = 1  # seconds: short, so the timeout behavior is redelivered quickly
WORKER_FLAGS = [
    "--concurrency", "4",
    "--visibility-timeout", str(VT),
    "--poll-interval", "0.2",
    "--max-attempts", "3",
    "--backoff", "0",
    "--heartbeat-interval", "0.2",
    "--drain-timeout", "5",
]  # fmt: skip


# -- helpers ------------------------------------------------------------------------------


def json_of(response: TestResponse) -> Any:
    """The response's JSON (werkzeug types `.json` as optional)."""
    return response.json


class WorkerSet:
    """Worker subprocesses on one database; each writes a ready file after its first beat."""

    def __init__(self, database_url: str, folder: Path) -> None:
        self.database_url = database_url
        self.folder = folder
        self.processes: dict[str, BackendProcess] = {}

    def start(self, worker_id: str, *flags: str) -> BackendProcess:
        ready = self.folder / f"{worker_id}.ready"
        process = BackendProcess(
            [
                "worker",
                *(flags or WORKER_FLAGS),
                "--worker-id",
                worker_id,
                "--ready-file",
                str(ready),
            ],
            {"DATABASE_URL": self.database_url, "FLASK_ENV": "testing"},
            self.folder / f"{worker_id}.log",
        ).start()
        self.processes[worker_id] = process

        def is_ready() -> bool:
            exit_code = process.process.poll() if process.process else None
            assert exit_code is None, f"{worker_id} exited {exit_code}:\n{process.log_text()}"
            return ready.exists()

        wait_until(is_ready, 15, message=f"worker {worker_id} to beat once")
        return process

    def log_lines(self) -> list[dict[str, Any]]:
        """Every worker's stdout, parsed: each line must be one JSON object."""
        records = []
        for worker_id, process in self.processes.items():
            for number, line in enumerate(process.log_text().splitlines(), 1):
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    pytest.fail(f"{worker_id} log line {number} is not JSON: {line!r}")
        return records

    def logs_text(self) -> str:
        return "\n".join(p.log_text() for p in self.processes.values())

    def story(self, command: dict[str, Any]) -> str:
        """A failure message: the command's audit and every worker log line about it."""
        command_id = command["command_id"]
        audit = [f"  {e['timestamp']} {e['event_type']} {e['details']}" for e in command["audit"]]
        lines = [
            f"  {record['timestamp']} {record['logger']}: {record['message']}"
            for record in self.log_lines()
            if command_id in record["message"] or record["extra"].get("command_id") == command_id
        ]
        return "\n".join([f"command {command_id}: audit", *audit, "worker log", *sorted(lines)])

    def stop_all(self) -> list[int | None]:
        return [process.stop() for process in reversed(self.processes.values())]


@contextmanager
def app_client(database_url: str, **settings: Any) -> Iterator[FlaskClient]:
    """A testing app on `database_url` (its own services), shut down afterwards."""
    app = create_app(fixtures.testing_settings(database_url, **settings))
    try:
        yield app.test_client()
    finally:
        container: Container = app.extensions["container"]
        container.coordinator.shutdown()
        container.close()


def send(
    client: FlaskClient, behavior: dict[str, Any], headers: dict[str, str] | None = None
) -> str:
    response = client.post(
        "/api/commands",
        json={"command_type": "TestCommand", "behavior": behavior, "payload": {"k": "v"}},
        headers=headers or {},
    )
    assert response.status_code == 201, json_of(response)
    return str(json_of(response)["command_id"])


def bulk(client: FlaskClient, test_id: str, count: int, behavior: dict[str, Any]) -> None:
    response = client.post(
        "/api/commands/bulk",
        json={"command_type": "TestCommand", "count": count, "behavior": behavior},
        headers={"X-Test-Id": test_id},
    )
    assert response.status_code == 202, json_of(response)


def detail(client: FlaskClient, command_id: str) -> dict[str, Any]:
    response = client.get(f"/api/commands/{command_id}")
    assert response.status_code == 200, json_of(response)
    return dict(json_of(response))


def wait_status(
    client: FlaskClient,
    command_id: str,
    status: str,
    timeout: float = 10,
    until: Callable[[dict[str, Any]], bool] = lambda _d: True,
) -> dict[str, Any]:
    """The command's detail once it has `status` (and `until` holds)."""
    seen: dict[str, Any] = {}

    def reached() -> dict[str, Any] | None:
        seen.update(detail(client, command_id))
        return dict(seen) if seen["status"] == status and until(seen) else None

    try:
        return dict(wait_until(reached, timeout, message=f"{command_id} to be {status}"))
    except AssertionError as exc:
        events = [e["event_type"] for e in seen.get("audit", [])]
        raise AssertionError(f"{exc}; last seen {seen.get('status')} audit={events}") from None


def events(command: dict[str, Any]) -> list[str]:
    return [event["event_type"] for event in command["audit"]]


def count_statuses(database_url: str, test_id: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT c.status, count(*) FROM commandbus.command c JOIN test_command t"
            " USING (command_id) WHERE t.test_id = %s GROUP BY c.status",
            (test_id,),
        ).fetchall()
    return {status: count for status, count in rows}


def new_test_id() -> str:
    return f"worker-{uuid.uuid4().hex[:12]}"


# -- the shared workers -----------------------------------------------------------------


@pytest.fixture(scope="module")
def workers(
    migrated_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerSet]:
    """Two workers on the module's database (the one `client` sends to)."""
    workers = WorkerSet(migrated_database_url, tmp_path_factory.mktemp("workers"))
    try:
        workers.start("shared-a")
        workers.start("shared-b")
        yield workers
    finally:
        workers.stop_all()


def test_success_completes_on_first_attempt_with_result(
    workers: WorkerSet, client: FlaskClient
) -> None:
    command_id = send(client, {"type": "success", "execution_time_ms": 10})
    command = wait_status(client, command_id, "COMPLETED")
    assert command["attempts"] == 1
    assert command["result"] == {"status": "ok", "attempt": 1}
    assert command["processed_at"] is not None
    assert command["last_error"] is None
    assert command["handler_runs"] == 1
    assert events(command) == ["SENT", "RECEIVED", "COMPLETED"], workers.story(command)


def test_fail_permanent_moves_to_tsq_with_its_error(
    workers: WorkerSet, client: FlaskClient
) -> None:
    behavior = {"type": "fail_permanent", "error_code": "INVALID_DATA", "error_message": "Bad"}
    command_id = send(client, behavior)
    command = wait_status(client, command_id, "IN_TROUBLESHOOTING_QUEUE")
    assert command["attempts"] == 1
    assert command["last_error"] == {"code": "INVALID_DATA", "message": "Bad"}
    assert events(command) == ["SENT", "RECEIVED", "MOVED_TO_TSQ"]
    assert command["audit"][-1]["details"]["error_code"] == "INVALID_DATA"
    assert command["result"] is None
    listed = json_of(client.get("/api/tsq"))["items"]
    assert command_id in {item["command_id"] for item in listed}


def test_fail_transient_exhausts_retries_into_tsq(workers: WorkerSet, client: FlaskClient) -> None:
    command_id = send(client, {"type": "fail_transient", "error_code": "FLAKY"})
    command = wait_status(client, command_id, "IN_TROUBLESHOOTING_QUEUE")
    assert command["attempts"] == 3, workers.story(command)
    assert events(command) == [
        "SENT", "RECEIVED", "FAILED", "RECEIVED", "FAILED", "RECEIVED", "MOVED_TO_TSQ",
    ], workers.story(command)  # fmt: skip
    assert command["last_error"]["code"] == "FLAKY"
    assert command["audit"][-1]["details"]["reason"] == "EXHAUSTED"
    assert command["handler_runs"] == 3


def test_transient_then_succeed_completes_after_n_failures(
    workers: WorkerSet, client: FlaskClient
) -> None:
    command_id = send(client, {"type": "fail_transient_then_succeed", "transient_failures": 2})
    command = wait_status(client, command_id, "COMPLETED")
    assert command["attempts"] == 3, workers.story(command)
    assert command["result"] == {"status": "ok", "attempt": 3}
    assert events(command) == [
        "SENT", "RECEIVED", "FAILED", "RECEIVED", "FAILED", "RECEIVED", "COMPLETED",
    ], workers.story(command)  # fmt: skip


def test_timeout_is_redelivered_and_applied_once(workers: WorkerSet, client: FlaskClient) -> None:
    command_id = send(client, {"type": "timeout", "execution_time_ms": 2500})
    # The redelivery completes at once; the first delivery finishes later and must find the
    # result already stored (its late COMPLETED is the second one in the audit).
    command = wait_status(
        client,
        command_id,
        "COMPLETED",
        timeout=15,
        until=lambda d: events(d).count("COMPLETED") == 2,
    )
    assert command["attempts"] >= 2
    assert events(command).count("RECEIVED") == 2
    assert command["handler_runs"] >= 2
    assert command["result"] == {"status": "ok", "attempt": 2}
    assert "Command already applied; returning the stored result" in workers.logs_text()


# -- TSQ operations ---------------------------------------------------------------------


def _in_tsq(client: FlaskClient) -> str:
    command_id = send(client, {"type": "fail_permanent", "error_code": "OPS"})
    wait_status(client, command_id, "IN_TROUBLESHOOTING_QUEUE")
    return command_id


def test_tsq_retry_reprocesses_the_command(workers: WorkerSet, client: FlaskClient) -> None:
    command_id = _in_tsq(client)
    response = client.post(f"/api/tsq/{command_id}/retry", json={"operator": "alice"})
    assert response.status_code == 200, json_of(response)
    assert response.json == {"command_id": command_id, "status": "PENDING"}
    command = wait_status(
        client,
        command_id,
        "IN_TROUBLESHOOTING_QUEUE",
        until=lambda d: events(d).count("MOVED_TO_TSQ") == 2,
    )
    assert events(command) == [
        "SENT", "RECEIVED", "MOVED_TO_TSQ", "OPERATOR_RETRY", "RECEIVED", "MOVED_TO_TSQ",
    ]  # fmt: skip
    assert command["attempts"] == 1  # the retry starts the count again
    assert command["handler_runs"] == 2


def test_tsq_cancel(workers: WorkerSet, client: FlaskClient) -> None:
    command_id = _in_tsq(client)
    response = client.post(f"/api/tsq/{command_id}/cancel", json={"reason": "not needed"})
    assert response.status_code == 200, json_of(response)
    assert json_of(response)["status"] == "CANCELED"
    command = detail(client, command_id)
    assert command["status"] == "CANCELED"
    assert events(command)[-1] == "OPERATOR_CANCEL"
    assert command_id not in {i["command_id"] for i in json_of(client.get("/api/tsq"))["items"]}


def test_tsq_complete(workers: WorkerSet, client: FlaskClient) -> None:
    command_id = _in_tsq(client)
    response = client.post(f"/api/tsq/{command_id}/complete", json={"result": {"fixed": True}})
    assert response.status_code == 200, json_of(response)
    command = detail(client, command_id)
    assert command["status"] == "COMPLETED"
    assert events(command)[-1] == "OPERATOR_COMPLETE"


def test_tsq_action_on_a_command_not_in_tsq_is_409(workers: WorkerSet, client: FlaskClient) -> None:
    command_id = send(client, {"type": "success"})
    wait_status(client, command_id, "COMPLETED")
    for action in ("retry", "cancel", "complete"):
        response = client.post(f"/api/tsq/{command_id}/{action}")
        assert response.status_code == 409, (action, json_of(response))
        assert json_of(response)["code"] == "NOT_IN_TSQ"
        assert "COMPLETED" in json_of(response)["error"]
    assert detail(client, command_id)["status"] == "COMPLETED"
    assert client.post(f"/api/tsq/{uuid.uuid4()}/retry").status_code == 404
    assert client.post(f"/api/tsq/{command_id}/explode").status_code == 404


def test_tsq_bulk_reports_each_outcome(workers: WorkerSet, client: FlaskClient) -> None:
    in_tsq = [_in_tsq(client), _in_tsq(client)]
    done = send(client, {"type": "success"})
    wait_status(client, done, "COMPLETED")
    unknown = str(uuid.uuid4())
    response = client.post(
        "/api/tsq/bulk",
        json={"action": "cancel", "command_ids": [*in_tsq, done, unknown, "garbage"]},
    )
    assert response.status_code == 200, json_of(response)
    results = {r["command_id"]: r for r in json_of(response)["results"]}
    assert [results[i]["ok"] for i in in_tsq] == [True, True]
    assert all(results[i]["status"] == "CANCELED" for i in in_tsq)
    assert (results[done]["ok"], results[done]["code"]) == (False, "NOT_IN_TSQ")
    assert (results[unknown]["ok"], results[unknown]["code"]) == (False, "NOT_FOUND")
    assert (results["garbage"]["ok"], results["garbage"]["code"]) == (False, "NOT_FOUND")
    assert [detail(client, i)["status"] for i in in_tsq] == ["CANCELED", "CANCELED"]


# -- workers list and logs ----------------------------------------------------------------


def _listed(client: FlaskClient) -> dict[str, dict[str, Any]]:
    return {w["worker_id"]: w for w in json_of(client.get("/api/workers"))["workers"]}


def test_workers_lists_live_workers_and_drops_a_stopped_one(
    workers: WorkerSet, client: FlaskClient
) -> None:
    listed = _listed(client)
    for worker_id in ("shared-a", "shared-b"):
        worker = listed[worker_id]
        assert worker["pid"] == workers.processes[worker_id].pid
        assert worker["host"]
        assert worker["concurrency"] == 4
        assert worker["last_heartbeat"]
        assert worker["health"] == "HEALTHY"
    extra = workers.start("extra", *WORKER_FLAGS[:-2], "--drain-timeout", "2")
    wait_until(lambda: "extra" in _listed(client), 5, message="extra worker to be listed")
    assert extra.stop() == 0
    del workers.processes["extra"]
    assert "extra" not in _listed(client)
    assert {"shared-a", "shared-b"} <= _listed(client).keys()


def test_worker_log_lines_carry_command_correlation_and_test_ids(
    workers: WorkerSet, client: FlaskClient
) -> None:
    test_id = new_test_id()
    sent = {}
    behaviors: list[dict[str, Any]] = [
        {"type": "success"},
        {"type": "fail_transient_then_succeed", "transient_failures": 1},
    ]
    for index, behavior in enumerate(behaviors):
        correlation = f"corr-{test_id}-{index}"
        command_id = send(client, behavior, {"X-Request-Id": correlation, "X-Test-Id": test_id})
        sent[command_id] = correlation
    for command_id in sent:
        wait_status(client, command_id, "COMPLETED")
    about: dict[str, list[dict[str, Any]]] = {command_id: [] for command_id in sent}
    for record in workers.log_lines():
        for command_id in sent:
            if command_id in record["message"] or record["extra"].get("command_id") == command_id:
                about[command_id].append(record)
    for command_id, correlation in sent.items():
        lines = about[command_id]
        messages = " | ".join(r["message"] for r in lines)
        assert "Received command" in messages and "Completed command" in messages, messages
        for record in lines:
            assert record["extra"].get("command_id") == command_id, record
            assert record["correlation_id"] == correlation, record
            assert record["test_id"] == test_id, record


# -- stopping, killing, resetting (own databases) ----------------------------------------


def test_sigterm_drains_in_flight_command_then_exits_0(
    make_migrated_database: Callable[[], str], tmp_path: Path
) -> None:
    url = make_migrated_database()
    workers = WorkerSet(url, tmp_path)
    drain_timeout = 10.0
    worker = workers.start(
        "draining", "--concurrency", "2", "--visibility-timeout", "10", "--poll-interval", "0.2",
        "--backoff", "0", "--heartbeat-interval", "0.2", "--drain-timeout", str(drain_timeout),
    )  # fmt: skip
    try:
        with app_client(url) as client:
            command_id = send(client, {"type": "success", "execution_time_ms": 1500})
            wait_status(client, command_id, "IN_PROGRESS", timeout=5)
            signalled = time.perf_counter()
            worker.signal(signal.SIGTERM)
            exit_code = worker.wait(timeout=drain_timeout + 5)
            took = time.perf_counter() - signalled
            command = detail(client, command_id)
            listed = json_of(client.get("/api/workers"))["workers"]
    finally:
        workers.stop_all()
    assert exit_code == 0, worker.log_text()
    assert took < drain_timeout
    assert command["status"] == "COMPLETED"
    assert command["handler_runs"] == 1
    assert events(command) == ["SENT", "RECEIVED", "COMPLETED"]
    assert listed == []
    log = worker.log_text()
    assert "Received SIGTERM: draining in-flight commands" in log
    assert "exited cleanly" in log


def test_sigterm_right_after_start_up_stops_promptly_and_cleanly(
    make_migrated_database: Callable[[], str], tmp_path: Path
) -> None:
    """Regression: SyncWorker.run() clears its stop flag as it starts, so a SIGTERM between
    the first heartbeat (ready) and the loop was lost; the worker ran on until the forced
    exit (poll interval + 3 s) and left its heartbeat row behind."""
    url = make_migrated_database()
    ready = tmp_path / "early.ready"
    process = BackendProcess(
        ["worker", *WORKER_FLAGS, "--worker-id", "early", "--ready-file", str(ready)],
        {"DATABASE_URL": url, "FLASK_ENV": "testing"},
        tmp_path / "early.log",
    ).start()
    try:
        wait_until(
            lambda: ready.exists() or process.process.poll() is not None,
            15,
            interval=0.001,
            message="the worker's first heartbeat",
        )
        signalled = time.perf_counter()
        process.signal(signal.SIGTERM)
        exit_code = process.wait(timeout=10)
        took = time.perf_counter() - signalled
    finally:
        process.stop()
    log = process.log_text()
    assert exit_code == 0, log
    assert took < 2.0, log  # the forced exit would take the poll interval + 3 s
    assert "Drain bound exceeded" not in log
    assert "exited cleanly" in log
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM worker_heartbeat").fetchone() == (0,)


def test_sigterm_with_nothing_in_flight_stops_at_once_not_after_the_poll_interval(
    make_migrated_database: Callable[[], str], tmp_path: Path
) -> None:
    """An idle worker waits for a notification up to its poll interval; a stop wakes it, so
    a throwaway stack is not held up by that wait (30 s here)."""
    url = make_migrated_database()
    workers = WorkerSet(url, tmp_path)
    worker = workers.start(
        "idle", "--poll-interval", "30", "--heartbeat-interval", "0.2", "--drain-timeout", "5"
    )
    try:
        signalled = time.perf_counter()
        worker.signal(signal.SIGTERM)
        exit_code = worker.wait(timeout=15)
        took = time.perf_counter() - signalled
    finally:
        workers.stop_all()
    log = worker.log_text()
    assert exit_code == 0, log
    assert took < 3.0, log
    assert "Drain bound exceeded" not in log
    assert "exited cleanly" in log


def test_sigterm_with_a_hung_command_exits_0_by_the_drain_bound(
    make_migrated_database: Callable[[], str], tmp_path: Path
) -> None:
    """A handler that outlives the drain timeout: the worker still exits 0 within its bound
    (drain timeout + poll interval + 3 s) and the command is redelivered to another worker."""
    url = make_migrated_database()
    workers = WorkerSet(url, tmp_path)
    flags = [
        "--concurrency", "2", "--visibility-timeout", "3", "--poll-interval", "0.2",
        "--backoff", "0", "--heartbeat-interval", "0.2", "--drain-timeout", "1",
    ]  # fmt: skip
    bound = 1 + 0.2 + 3
    stuck = workers.start("stuck", *flags)
    try:
        with app_client(url) as client:
            command_id = send(client, {"type": "timeout", "execution_time_ms": 60_000})
            wait_status(client, command_id, "IN_PROGRESS", timeout=5)
            signalled = time.perf_counter()
            stuck.signal(signal.SIGTERM)
            exit_code = stuck.wait(timeout=bound + 10)
            took = time.perf_counter() - signalled
            workers.start("rescuer", *flags)
            command = wait_status(client, command_id, "COMPLETED", timeout=10)
    finally:
        workers.stop_all()
    assert exit_code == 0, stuck.log_text()
    assert 1 <= took < bound + 1.5, took
    assert "Drain bound exceeded; exiting with 1 command(s) left for redelivery" in (
        stuck.log_text()
    )
    assert command["attempts"] == 2
    assert command["result"] == {"status": "ok", "attempt": 2}


def test_sigkill_of_one_worker_loses_no_command(
    make_migrated_database: Callable[[], str], tmp_path: Path
) -> None:
    url = make_migrated_database()
    workers = WorkerSet(url, tmp_path)
    flags = [
        "--concurrency", "4", "--visibility-timeout", "2", "--poll-interval", "0.2",
        "--backoff", "0", "--heartbeat-interval", "0.2",
    ]  # fmt: skip
    victim = workers.start("victim", *flags)
    workers.start("survivor", *flags)
    test_id = new_test_id()
    total = 200
    try:
        with app_client(url, worker_stale_after=1.0) as client:
            bulk(client, test_id, total, {"type": "success", "execution_time_ms": 20})
            wait_until(
                lambda: count_statuses(url, test_id).get("COMPLETED", 0) >= 30,
                10,
                message="some commands to complete before the kill",
            )
            os.kill(victim.pid, signal.SIGKILL)
            assert victim.wait(timeout=5) == -signal.SIGKILL
            wait_until(
                lambda: count_statuses(url, test_id) == {"COMPLETED": total},
                30,
                message=f"all {total} commands COMPLETED",
            )
            wait_until(
                lambda: "victim" not in _listed(client),
                5,
                message="the killed worker to drop out of /api/workers",
            )
            assert "survivor" in _listed(client)
    finally:
        workers.stop_all()
    with psycopg.connect(url) as conn:
        unapplied = conn.execute(
            "SELECT count(*) FROM test_command WHERE test_id = %s AND result IS NULL", (test_id,)
        ).fetchone()
        queued = conn.execute("SELECT count(*) FROM pgmq.q_test__commands").fetchone()
    assert unapplied == (0,)
    assert queued == (0,)


def test_reset_while_workers_run_recovers_without_restart(
    make_migrated_database: Callable[[], str], tmp_path: Path
) -> None:
    url = make_migrated_database()
    workers = WorkerSet(url, tmp_path)
    flags = [
        "--concurrency", "2", "--visibility-timeout", "2", "--poll-interval", "0.2",
        "--backoff", "0", "--heartbeat-interval", "0.2",
    ]  # fmt: skip
    worker = workers.start("resilient", *flags)
    testing = TestingService(url, ResetLock())
    warm_up, busy = new_test_id(), new_test_id()
    try:
        with app_client(url) as client:
            # Enough traffic that the worker's pooled connections hold prepared statements.
            bulk(client, warm_up, 60, {"type": "success"})
            wait_until(
                lambda: count_statuses(url, warm_up) == {"COMPLETED": 60},
                10,
                message="warm-up commands to complete",
            )
            # Reset while the worker is busy with slow commands.
            bulk(client, busy, 40, {"type": "success", "execution_time_ms": 50})
            wait_until(
                lambda: count_statuses(url, busy).get("COMPLETED", 0) >= 2,
                10,
                message="the worker to be busy",
            )
            testing.reset(False)
            assert count_statuses(url, busy) == {}
            wait_until(
                lambda: "recovered without restart" in worker.log_text(),
                10,
                message="the worker to log its recovery",
            )
            after = send(client, {"type": "success"})
            command = wait_status(client, after, "COMPLETED", timeout=5)
            assert worker.process is not None and worker.process.poll() is None
    finally:
        testing.close()
        workers.stop_all()
    assert command["attempts"] == 1
    assert command["result"] == {"status": "ok", "attempt": 1}


# -- command line errors ------------------------------------------------------------------


def _run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "FLASK_ENV")}
    return subprocess.run(
        [sys.executable, "-m", "backend", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO_ROOT,
        check=False,
    )


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--concurrency", "0"], "argument --concurrency: '0' must be at least 1"),
        (["--backoff", "x"], "argument --backoff: 'x' is not a comma-separated list"),
        (["--poll-interval", "0"], "argument --poll-interval: '0' must be greater than 0"),
        (["--visibility-timeout", "1.5"], "argument --visibility-timeout: '1.5' is not a whole"),
    ],
)
def test_bad_worker_flag_exits_2_with_a_clear_message(flags: list[str], says: str) -> None:
    result = _run_cli(["worker", *flags], {"DATABASE_URL": "postgresql://u@127.0.0.1:1/db"})
    assert result.returncode == 2, result.stderr
    assert says in result.stderr
    assert result.stdout == ""


def test_worker_without_database_url_exits_2_with_one_line() -> None:
    result = _run_cli(["worker"], {})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("backend: configuration error: DATABASE_URL is not set")
    assert result.stdout == ""


# -- behaviors over the command's whole life ------------------------------------------------


def test_operator_retry_of_fail_transient_then_succeed_completes(
    make_migrated_database: Callable[[], str], tmp_path: Path
) -> None:
    """N failures in total, then success, even when an operator retry resets the bus's count.

    Sent while no worker runs, the API checks against the stored config (3 attempts); the
    worker then starts with --max-attempts 2, so 2 failures exhaust its retries and the
    command lands in the TSQ. The operator's retry is its third delivery: it succeeds.
    """
    url = make_migrated_database()
    workers = WorkerSet(url, tmp_path)
    at = WORKER_FLAGS.index("--max-attempts")
    flags = [*WORKER_FLAGS[: at + 1], "2", *WORKER_FLAGS[at + 2 :]]
    try:
        with app_client(url) as client:
            behavior = {"type": "fail_transient_then_succeed", "transient_failures": 2}
            command_id = send(client, behavior)
            workers.start("two-attempts", *flags)
            in_tsq = wait_status(client, command_id, "IN_TROUBLESHOOTING_QUEUE", timeout=15)
            assert in_tsq["attempts"] == 2, workers.story(in_tsq)
            retried = client.post(f"/api/tsq/{command_id}/retry", json={"operator": "ops"})
            assert retried.status_code == 200, json_of(retried)
            done = wait_status(client, command_id, "COMPLETED", timeout=15)
            # With the worker live, the API now checks against what it uses (2).
            noted = client.post(
                "/api/commands", json={"command_type": "TestCommand", "behavior": behavior}
            )
    finally:
        workers.stop_all()
    assert done["result"] == {"status": "ok", "attempt": 3}, workers.story(done)
    assert events(done).count("RECEIVED") == 3
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT deliveries FROM test_command WHERE command_id = %s", (command_id,)
        ).fetchone()
    assert row == (3,)
    assert noted.status_code == 201, json_of(noted)
    assert json_of(noted)["expected"] == "troubleshooting_queue"
    assert "max_attempts 2" in json_of(noted)["note"]


def test_command_exhausting_its_attempts_is_accepted_then_completes_after_operator_retry(
    make_migrated_database: Callable[[], str], tmp_path: Path
) -> None:
    """The troubleshooting queue's central scenario, through the API: a worker with
    --max-attempts 1 and one transient failure. The send is accepted with a note that it
    will reach the TSQ; it does; an operator retry goes on counting and completes it."""
    url = make_migrated_database()
    workers = WorkerSet(url, tmp_path)
    at = WORKER_FLAGS.index("--max-attempts")
    flags = [*WORKER_FLAGS[: at + 1], "1", *WORKER_FLAGS[at + 2 :]]
    behavior = {"type": "fail_transient_then_succeed", "transient_failures": 1}
    try:
        workers.start("one-attempt", *flags)
        with app_client(url) as client:
            response = client.post(
                "/api/commands",
                json={"command_type": "TestCommand", "behavior": behavior},
                headers={"X-Test-Id": "tsq-scenario"},
            )
            assert response.status_code == 201, json_of(response)
            sent = json_of(response)
            command_id = sent["command_id"]
            in_tsq = wait_status(client, command_id, "IN_TROUBLESHOOTING_QUEUE", timeout=15)
            listed = json_of(client.get("/api/tsq"))
            retried = client.post(f"/api/tsq/{command_id}/retry", json={"operator": "ops"})
            assert retried.status_code == 200, json_of(retried)
            done = wait_status(client, command_id, "COMPLETED", timeout=15)
    finally:
        workers.stop_all()
    assert sent["expected"] == "troubleshooting_queue"
    assert sent["operator_retries"] == 1
    assert "max_attempts 1" in sent["note"]
    assert in_tsq["attempts"] == 1, workers.story(in_tsq)
    assert in_tsq["last_error"]["code"] == "TRANSIENT_ERROR"
    assert command_id in [item["command_id"] for item in listed["items"]], listed
    assert events(done) == [
        "SENT", "RECEIVED", "MOVED_TO_TSQ", "OPERATOR_RETRY", "RECEIVED", "COMPLETED",
    ], workers.story(done)  # fmt: skip
    assert done["result"] == {"status": "ok", "attempt": 2}  # delivery 2 of its life


def test_workers_follow_the_stored_config_without_restart(
    make_migrated_database: Callable[[], str], tmp_path: Path
) -> None:
    """PUT /api/config max_attempts=5: a worker without --max-attempts uses 5 from its next
    heartbeat on, reports it, and a command with 4 failures completes."""
    url = make_migrated_database()
    workers = WorkerSet(url, tmp_path)
    at = WORKER_FLAGS.index("--max-attempts")
    worker = workers.start("follower", *WORKER_FLAGS[:at], *WORKER_FLAGS[at + 2 :])
    try:
        with app_client(url) as client:
            config = json_of(client.get("/api/config"))
            config["retry"] = {**config["retry"], "max_attempts": 5, "base_delay_ms": 0}
            saved = client.put("/api/config", json=config)
            assert saved.status_code == 200
            # PUT answers once the live workers use the new values: no lag for the next send.
            assert "X-Workers-Lagging" not in saved.headers

            def follows() -> dict[str, Any] | None:
                report = json_of(client.get("/api/config/effective"))
                mine = [w for w in report["workers"] if w["worker_id"] == "follower"]
                ok = mine and mine[0]["effective"]["max_attempts"] == 5
                return report if ok else None

            report = follows()
            assert report is not None, json_of(client.get("/api/config/effective"))
            behavior = {"type": "fail_transient_then_succeed", "transient_failures": 4}
            command_id = send(client, behavior)
            done = wait_status(client, command_id, "COMPLETED", timeout=20)
            listed = json_of(client.get("/api/workers"))["workers"]
    finally:
        workers.stop_all()
    (mine,) = [w for w in report["workers"] if w["worker_id"] == "follower"]
    assert mine["sources"]["max_attempts"] == "stored"
    assert mine["sources"]["visibility_timeout"] == "flag"
    assert mine["effective"]["backoff"] == [0]  # the --backoff flag wins over the stored one
    assert report["stored"]["max_attempts"] == 5
    assert {
        "worker_id": "follower",
        "setting": "visibility_timeout",
        "stored": 30,
        "effective": VT,
        "why": "set by a command-line flag",
    } in report["differences"]
    assert not any(d["setting"] == "max_attempts" for d in report["differences"])
    assert done["attempts"] == 5 and done["max_attempts"] == 5, workers.story(done)
    assert listed[0]["settings"]["effective"]["max_attempts"] == 5
    assert "follows the stored config: max_attempts 3 -> 5" in worker.log_text()


def _send_raw_message(url: str, data: dict[str, Any]) -> str:
    """A bus command with no test_command row (as another sender would make)."""
    command_id = uuid.uuid4()
    with ConnectionPool(url, min_size=1, max_size=1) as pool:
        SyncCommandBus(pool).send("test", "TestCommand", command_id, data, max_attempts=3)
    return str(command_id)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"anything": 1}, "TEST_COMMAND_NOT_FOUND"),
        ({"behavior": {"type": "explode"}, "ids": {}}, "INVALID_BEHAVIOR"),
        ({"behavior": {"type": "success", "extra": 1}, "ids": {}}, "INVALID_BEHAVIOR"),
    ],
    ids=["no-row", "unknown-type", "unknown-field"],
)
def test_foreign_or_invalid_messages_fail_permanently_at_once(
    workers: WorkerSet,
    client: FlaskClient,
    migrated_database_url: str,
    data: dict[str, Any],
    code: str,
) -> None:
    command_id = _send_raw_message(migrated_database_url, data)
    with psycopg.connect(migrated_database_url) as conn:
        wait_until(
            lambda: (
                conn.execute(
                    "SELECT status FROM commandbus.command WHERE command_id = %s", (command_id,)
                ).fetchone()
                == ("IN_TROUBLESHOOTING_QUEUE",)
            ),
            15,
            message=f"{command_id} in the TSQ",
        )
        row = conn.execute(
            "SELECT attempts, last_error_code FROM commandbus.command WHERE command_id = %s",
            (command_id,),
        ).fetchone()
    assert row == (1, code)  # no retries: retrying can't fix it
    assert "Traceback" not in workers.logs_text()


def test_timeout_hangs_only_on_the_first_delivery_ever(
    make_migrated_database: Callable[[], str],
) -> None:
    """A delivery after the first (e.g. an operator retry, attempt 1 again) does not hang.

    Its own database: no worker may pick the 10-minute hang up."""
    migrated_database_url = make_migrated_database()
    with app_client(migrated_database_url) as client:
        command_id = send(client, {"type": "timeout", "execution_time_ms": 600_000})
    with psycopg.connect(migrated_database_url, autocommit=True) as conn:
        conn.execute("UPDATE test_command SET deliveries = 1 WHERE command_id = %s", (command_id,))
    command = Command(
        domain="test",
        command_type="TestCommand",
        command_id=uuid.UUID(command_id),
        data={"behavior": {"type": "timeout", "execution_time_ms": 600_000}, "ids": {}},
    )
    results: list[dict[str, Any]] = []
    with ConnectionPool(migrated_database_url, kwargs={"autocommit": True}) as pool:
        handler = TestCommandHandler(pool)
        context = HandlerContext(command=command, attempt=1, max_attempts=3, msg_id=1)
        thread = threading.Thread(target=lambda: results.append(handler(command, context)))
        thread.daemon = True
        thread.start()
        thread.join(timeout=10)
    assert results == [{"status": "ok", "attempt": 2}], "the second delivery hung"
