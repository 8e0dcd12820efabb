"""A command's completion in one statement: store its result, delete its message, finish it.

reliable-cmd 0.2.2's `SyncWorker._complete` spends four round trips on a success (BEGIN,
`pgmq.delete`, `commandbus.sp_finish_command`, COMMIT) and stores no result, so the app
needed at least one more. Here one autocommit statement (one transaction) does the three
writes, calling the library's own stored procedure with the audit details the library
writes, and the worker logs the library's own "Completed command" record.

Commands with a reply queue or a batch, or without a result, take the library's path (it
sends the reply, runs the batch callback); their result is stored first. Pinned to the
library release by backend/bus/compat.py; tests/backend/test_bus_fork.py checks that this
leaves the same rows and record as the library's completion.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from commandbus.models import Command
from psycopg import Connection
from psycopg.types.json import Jsonb

from backend.bus import queue_name

logger = logging.getLogger("backend.bus.handlers")
# The library's logger: the "Completed command" record keeps its name and message.
library_logger = logging.getLogger("commandbus.sync.worker")

STORE_RESULT = """
    UPDATE test_command
    SET handler_runs = handler_runs + 1,
        result = COALESCE(result, %(result)s),
        processed_at = COALESCE(processed_at, NOW())
    WHERE command_id = %(command_id)s
    RETURNING result
"""

COMPLETE_SQL = f"""
WITH stored AS ({STORE_RESULT})
SELECT pgmq.delete(%(queue)s, %(msg_id)s::bigint),
       commandbus.sp_finish_command(%(domain)s, %(command_id)s, 'COMPLETED', 'COMPLETED',
           NULL, NULL, NULL, %(details)s::jsonb, NULL),
       (SELECT result = %(result)s FROM stored)
"""  # (deleted, batch complete, ours stored?): NULL when the row is gone, false when another won

STORE_SQL = f"WITH stored AS ({STORE_RESULT}) SELECT (SELECT result = %(result)s FROM stored)"


def completion_details(msg_id: int, reply_to: str | None, has_result: bool) -> str:
    """The COMPLETED audit event's details, as the library writes them."""
    return json.dumps({"msg_id": msg_id, "reply_to": reply_to, "has_result": has_result})


def complete_in_one_statement(
    conn: Connection[Any], command: Command, msg_id: int, result: dict[str, Any]
) -> None:
    """Store `result` (the first stored wins), delete the message, finish the command.

    `conn` must be in autocommit mode: the statement is its own transaction."""
    row = conn.execute(
        COMPLETE_SQL,
        {
            "result": Jsonb(result),
            "command_id": command.command_id,
            "queue": queue_name(command.domain),
            "msg_id": msg_id,
            "domain": command.domain,
            "details": completion_details(msg_id, None, True),
        },
    ).fetchone()
    _log_stored(command, row[2] if row is not None else None)
    library_logger.info(
        "Completed command %s.%s (command_id=%s)",
        command.domain,
        command.command_type,
        command.command_id,
    )


def store_result(conn: Connection[Any], command: Command, result: dict[str, Any]) -> None:
    """Store `result` alone (the first stored wins): before the library's own completion."""
    row = conn.execute(
        STORE_SQL, {"result": Jsonb(result), "command_id": command.command_id}
    ).fetchone()
    _log_stored(command, row[0] if row is not None else None)


def _log_stored(command: Command, ours: bool | None) -> None:
    if ours is None:
        logger.warning(
            "No test_command row to store the result in",
            extra={"command_id": str(command.command_id)},
        )
    elif not ours:  # an earlier (or concurrent) delivery got there first
        logger.info(
            "Command already applied; returning the stored result",
            extra={"command_id": str(command.command_id)},
        )
