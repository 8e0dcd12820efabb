"""The PGMQ compatibility layer, against the real PGMQ (1.13) of the embedded server.

Each run happens in a fresh interpreter so the library's SQL is pristine unless the run
applies `backend.bus.compat.apply_pgmq_compat()` itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import pytest

from backend.bus import compat
from tests.fixtures.backend import REPO_ROOT

# Sends one command, runs a SyncWorker until it has handled the message or logged an error
# about it (events, not sleeps), then prints what happened as one JSON line.
_RUN_ONE_COMMAND = r"""
import json, logging, sys, threading, time, uuid
from commandbus import HandlerRegistry
from commandbus.sync import SyncCommandBus, SyncWorker
from psycopg_pool import ConnectionPool

url, use_compat = sys.argv[1], sys.argv[2] == "compat"
if use_compat:
    from backend.bus.compat import apply_pgmq_compat
    apply_pgmq_compat()

errors, calls, outcome = [], [], threading.Event()
class Collect(logging.Handler):
    def emit(self, record):
        if record.exc_info:
            errors.append(f"{record.exc_info[0].__name__}: {record.exc_info[1]}")
            outcome.set()
logging.getLogger("commandbus").addHandler(Collect())

def handle(cmd, ctx):
    calls.append(ctx.attempt)
    return {}

registry = HandlerRegistry()
registry.register_sync("test", "TestCommand", handle)
with ConnectionPool(url, min_size=1, max_size=6) as pool:
    command_id = uuid.uuid4()
    SyncCommandBus(pool).send("test", "TestCommand", command_id, {"n": 1})
    worker = SyncWorker(pool, "test", registry=registry, visibility_timeout=5,
                        statement_timeout=2000)
    thread = threading.Thread(target=worker.run, kwargs={"concurrency": 1,
                                                         "poll_interval": 0.1})
    thread.start()
    health = worker.health_status
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (health.total_successes or outcome.is_set()):
        outcome.wait(0.02)
    worker.stop(timeout=5)
    thread.join(timeout=10)
    status = SyncCommandBus(pool).get_command("test", command_id).status.value
print(json.dumps({"status": status, "handler_calls": len(calls), "errors": errors}))
"""


def _run_one_command(url: str, mode: str) -> dict[str, object]:
    completed = subprocess.run(
        [sys.executable, "-c", _RUN_ONE_COMMAND, url, mode],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_library_alone_never_completes_a_command_on_pgmq_1_13(
    make_migrated_database: Callable[[], str],
) -> None:
    outcome = _run_one_command(make_migrated_database(), "plain")
    assert outcome["status"] == "PENDING", outcome
    assert outcome["handler_calls"] == 0, outcome
    assert any(
        "AttributeError" in error and "'get'" in error
        for error in outcome["errors"]  # type: ignore[attr-defined]
    ), outcome


def test_compat_layer_makes_the_command_complete(
    make_migrated_database: Callable[[], str],
) -> None:
    outcome = _run_one_command(make_migrated_database(), "compat")
    assert outcome == {"status": "COMPLETED", "handler_calls": 1, "errors": []}


def test_compat_refuses_another_library_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compat, "_applied", False)
    monkeypatch.setattr(compat, "version", lambda _name: "0.3.0")
    with pytest.raises(compat.IncompatibleCommandBus) as raised:
        compat.apply_pgmq_compat()
    message = str(raised.value)
    assert "reliable-cmd 0.2.2" in message
    assert "0.3.0" in message
    assert "pyproject.toml" in message
    assert compat.is_applied() is False


def test_compat_is_idempotent_and_patches_both_statements() -> None:
    from commandbus._core.pgmq_sql import PgmqSQL

    compat.apply_pgmq_compat()
    compat.apply_pgmq_compat()
    assert PgmqSQL.READ == compat.READ_SQL
    assert PgmqSQL.SET_VT == compat.SET_VT_SQL
    assert compat.is_applied()
