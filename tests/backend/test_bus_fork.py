"""The worker's overrides of reliable-cmd's private steps, one pin each (backend/bus/worker_cli.py).

AppWorker replaces or extends four private parts of the pinned SyncWorker (0.2.2): each test
runs the library's own step and ours on a real database and checks the part we rely on (the
idle loop, replaced whole: its source is pinned), so a library change that breaks an override
fails here, not in production. (The PGMQ column fix has its own tests in test_bus_compat.py.)
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from commandbus import HandlerRegistry
from commandbus.exceptions import TransientCommandError
from commandbus.models import Command, HandlerContext
from commandbus.sync import SyncCommandBus, SyncWorker
from commandbus.sync.worker import ReceivedCommand
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from backend.bus import DOMAIN
from backend.bus.compat import apply_pgmq_compat
from backend.bus.log_context import CommandContextFilter, CommandIds
from backend.bus.worker_cli import AppWorker
from backend.bus.worker_options import WorkerOptions

RESULT = {"status": "ok", "attempt": 1}


def _fail(_command: Command, _context: HandlerContext) -> None:
    raise TransientCommandError(code="TRANSIENT_ERROR", message="fails")


@pytest.fixture
def pools(make_migrated_database: Callable[[], str]) -> Iterator[tuple[str, ConnectionPool[Any]]]:
    apply_pgmq_compat()
    url = make_migrated_database()
    with ConnectionPool(url, min_size=1, max_size=4) as bus_pool:
        yield url, bus_pool


def _send(url: str, pool: ConnectionPool[Any], ids: dict[str, str] | None = None) -> uuid.UUID:
    """A test command as CommandService sends it: its row and its message, one transaction."""
    command_id = uuid.uuid4()
    with pool.connection() as conn:
        type_id = conn.execute(
            "SELECT id FROM command_type WHERE domain = %s AND name = 'TestCommand'", (DOMAIN,)
        ).fetchone()
        assert type_id is not None
        conn.execute(
            "INSERT INTO test_command (command_id, command_type_id, payload, behavior)"
            " VALUES (%s, %s, '{}', %s)",
            (command_id, type_id[0], Jsonb({"type": "success"})),
        )
        data = {"behavior": {"type": "success"}, "ids": ids or {}}
        SyncCommandBus(pool).send(DOMAIN, "TestCommand", command_id, data, conn=conn)
    return command_id


def _app_worker(
    url: str, pool: ConnectionPool[Any], completions: ConnectionPool[Any], **kw: Any
) -> AppWorker:
    registry = kw.pop("registry", HandlerRegistry())
    return AppWorker(
        pool, DOMAIN, ids=kw.pop("ids", CommandIds()), completions=completions,
        registry=registry, visibility_timeout=30, statement_timeout=5000, **kw,
    )  # fmt: skip


def _receive_one(worker: SyncWorker) -> ReceivedCommand:
    (received,) = worker._receive(batch_size=1)
    return received


def _facts(url: str, command_id: uuid.UUID, msg_id: int) -> dict[str, Any]:
    """What a completion leaves: the command row, its audit events, the queue."""
    with psycopg.connect(url) as conn:
        command = conn.execute(
            "SELECT status, attempts, last_error_type, last_error_code, last_error_msg"
            " FROM commandbus.command WHERE command_id = %s",
            (command_id,),
        ).fetchone()
        audit = conn.execute(
            "SELECT event_type, details_json FROM commandbus.audit WHERE command_id = %s"
            " ORDER BY audit_id",
            (command_id,),
        ).fetchall()
        queued = conn.execute(
            "SELECT count(*) FROM pgmq.q_test__commands WHERE msg_id = %s", (msg_id,)
        ).fetchone()
        archived = conn.execute(
            "SELECT count(*) FROM pgmq.a_test__commands WHERE msg_id = %s", (msg_id,)
        ).fetchone()
        stored = conn.execute(
            "SELECT result, handler_runs FROM test_command WHERE command_id = %s", (command_id,)
        ).fetchone()
    own = ("msg_id", "correlation_id")  # each command's own values
    events = [(event, {k: v for k, v in (details or {}).items() if k not in own})
              for event, details in audit]  # fmt: skip
    completed = [details for event, details in audit if event == "COMPLETED"]
    return {
        "command": command,
        "events": events,
        "completed_msg_id": [d.get("msg_id") == msg_id for d in completed if d],
        "queued": queued,
        "archived": archived,
        "stored": stored,
    }


def test_one_statement_completion_leaves_what_the_library_leaves_plus_the_result(
    pools: tuple[str, ConnectionPool[Any]], caplog: pytest.LogCaptureFixture
) -> None:
    url, pool = pools
    library = SyncWorker(pool, DOMAIN, registry=HandlerRegistry(), statement_timeout=5000)
    with ConnectionPool(url, min_size=1, max_size=2, kwargs={"autocommit": True}) as auto:
        ours = _app_worker(url, pool, auto)
        theirs_id, ours_id = _send(url, pool), _send(url, pool)
        caplog.set_level(logging.INFO, logger="commandbus.sync.worker")
        received = _receive_one(library)
        assert received.command.command_id == theirs_id
        library._complete(received, result=RESULT)
        mine = _receive_one(ours)
        assert mine.command.command_id == ours_id
        ours._complete(mine, result=RESULT)
    theirs = _facts(url, theirs_id, received.msg_id)
    got = _facts(url, ours_id, mine.msg_id)
    assert got["command"] == theirs["command"] == ("COMPLETED", 1, None, None, None)
    assert got["events"] == theirs["events"]
    assert [event for event, _ in got["events"]] == ["SENT", "RECEIVED", "COMPLETED"]
    assert got["completed_msg_id"] == theirs["completed_msg_id"] == [True]
    assert got["queued"] == theirs["queued"] == (0,)
    assert got["archived"] == theirs["archived"] == (0,)  # deleted, not archived
    assert theirs["stored"] == (None, 0)  # the library stores no result ...
    assert got["stored"] == (RESULT, 1)  # ... ours does, in the same statement
    completed = [
        (r.name, r.getMessage()) for r in caplog.records if r.getMessage().startswith("Completed")
    ]
    assert completed == [
        ("commandbus.sync.worker", f"Completed command test.TestCommand (command_id={c})")
        for c in (theirs_id, ours_id)
    ]


def test_a_second_completion_keeps_the_first_result(
    pools: tuple[str, ConnectionPool[Any]], caplog: pytest.LogCaptureFixture
) -> None:
    """A redelivery that completes again (after a visibility timeout) stores nothing new."""
    url, pool = pools
    with ConnectionPool(url, min_size=1, max_size=2, kwargs={"autocommit": True}) as auto:
        ours = _app_worker(url, pool, auto)
        command_id = _send(url, pool)
        received = _receive_one(ours)
        ours._complete(received, result=RESULT)
        caplog.set_level(logging.INFO)
        ours._complete(received, result={"status": "ok", "attempt": 2})
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT result, handler_runs FROM test_command WHERE command_id = %s", (command_id,)
        ).fetchone()
    assert row == (RESULT, 2)
    assert "Command already applied; returning the stored result" in caplog.text


def test_received_record_carries_the_ids_of_the_message(
    pools: tuple[str, ConnectionPool[Any]], caplog: pytest.LogCaptureFixture
) -> None:
    """_process_message learns `data.ids` before the library logs "Received command"."""
    url, pool = pools
    ids = CommandIds()
    caplog.handler.addFilter(CommandContextFilter(ids))
    caplog.set_level(logging.INFO, logger="commandbus.sync.worker")
    with ConnectionPool(url, min_size=1, max_size=2, kwargs={"autocommit": True}) as auto:
        ours = _app_worker(url, pool, auto, ids=ids)
        command_id = _send(url, pool, {"correlation_id": "corr-1", "test_id": "test-1"})
        _receive_one(ours)
    (record,) = [r for r in caplog.records if r.getMessage().startswith("Received command")]
    assert str(command_id) in record.getMessage()
    assert (record.correlation_id, record.test_id) == ("corr-1", "test-1")  # type: ignore[attr-defined]


def test_live_settings_reach_the_next_message(pools: tuple[str, ConnectionPool[Any]]) -> None:
    """apply_live_settings: the library reads retry policy, visibility timeout and statement
    timeout per message; with max_attempts 1 the first failure exhausts the command."""
    url, pool = pools
    registry = HandlerRegistry()
    registry.register_sync(DOMAIN, "TestCommand", _fail)
    options = WorkerOptions(
        domain=DOMAIN, concurrency=1, visibility_timeout=30, poll_interval=1.0, max_attempts=3,
        backoff=[0], drain_timeout=1.0, heartbeat_interval=1.0, worker_id="pin",
        ready_file=None,
    )  # fmt: skip
    # One connection: the statement timeout the library sets in _receive stays on it.
    with (
        ConnectionPool(url, min_size=1, max_size=1) as one,
        ConnectionPool(url, min_size=1, max_size=1, kwargs={"autocommit": True}) as auto,
    ):
        ours = _app_worker(url, one, auto, registry=registry)
        live = replace(options, max_attempts=1, visibility_timeout=7)
        ours.apply_live_settings(live)
        command_id = _send(url, pool)
        received = _receive_one(ours)
        with one.connection() as conn:
            timeout = conn.execute("SHOW statement_timeout").fetchone()
        with psycopg.connect(url) as conn:
            seconds = conn.execute(
                "SELECT EXTRACT(EPOCH FROM vt - NOW()) FROM pgmq.q_test__commands"
                " WHERE msg_id = %s",
                (received.msg_id,),
            ).fetchone()
        ours._process_command(received)
    assert timeout == (f"{live.statement_timeout_ms}ms",)
    assert seconds is not None and 5 < float(seconds[0]) <= 7  # the live visibility timeout
    with psycopg.connect(url) as conn:
        status = conn.execute(
            "SELECT status, attempts FROM commandbus.command WHERE command_id = %s", (command_id,)
        ).fetchone()
    assert status == ("IN_TROUBLESHOOTING_QUEUE", 1)  # exhausted by the live max_attempts


# The library's idle loop that AppWorker._run_with_notify replaces whole (reliable-cmd 0.2.2).
LIBRARY_IDLE_LOOP_SHA256 = "76554d2bf22204c1"


def test_the_replaced_idle_loop_is_the_one_the_override_was_written_against() -> None:
    """_run_with_notify is a copy of the library's loop with one change (each wait ends by
    itself after one notification): a library release that changes the original must be
    looked at again. What the change does is tested with real workers in test_worker.py
    (SIGTERM with nothing in flight stops at once)."""
    source = inspect.getsource(SyncWorker._run_with_notify)

    assert hashlib.sha256(source.encode()).hexdigest()[:16] == LIBRARY_IDLE_LOOP_SHA256
