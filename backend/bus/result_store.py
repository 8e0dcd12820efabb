"""Store a command's result in the same statement that removes its message from the queue.

A successful handler used to spend a round trip of its own on `UPDATE test_command SET
result = ...`; the library's completion then spent four more (BEGIN, pgmq.delete,
finish, COMMIT). Here the handler hands its result over, and the completion's
`pgmq.delete` becomes one statement that also stores it (first stored result wins):
the same round trips as the library alone, and result and completion commit together.

It relies on reliable-cmd 0.2.2's SyncWorker._complete calling `self._pgmq.delete(queue,
msg_id, conn)` inside its transaction (pinned and checked by backend/bus/compat.py).
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb

logger = logging.getLogger("backend.bus.handlers")

STORE_AND_DELETE_SQL = """
WITH stored AS (
    UPDATE test_command
    SET handler_runs = handler_runs + 1,
        result = COALESCE(result, %(result)s),
        processed_at = COALESCE(processed_at, NOW())
    WHERE command_id = %(command_id)s
    RETURNING result
)
SELECT pgmq.delete(%(queue)s, %(msg_id)s::bigint),
       (SELECT result = %(result)s FROM stored)
"""  # (deleted, ours stored?): NULL when the row is gone, false when another result won


@dataclass(frozen=True)
class HandedOver:
    command_id: uuid.UUID
    result: dict[str, Any]


class PendingResults:
    """Results of handlers that succeeded, by message id, until their completion runs."""

    def __init__(self) -> None:
        self._items: dict[int, HandedOver] = {}
        self._lock = threading.Lock()

    def hand_over(self, msg_id: int, command_id: uuid.UUID, result: dict[str, Any]) -> None:
        with self._lock:
            self._items[msg_id] = HandedOver(command_id, result)

    def take(self, msg_id: int) -> HandedOver | None:
        with self._lock:
            return self._items.pop(msg_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


class ResultStoringPgmq:
    """The library's PGMQ client, whose `delete` also stores a handed-over result."""

    def __init__(self, client: Any, pending: PendingResults) -> None:
        self._client = client
        self._pending = pending

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def delete(self, queue_name: str, msg_id: int, conn: Connection[Any] | None = None) -> bool:
        handed = self._pending.take(msg_id)
        if handed is None or conn is None:
            return bool(self._client.delete(queue_name, msg_id, conn))
        row = conn.execute(
            STORE_AND_DELETE_SQL,
            {
                "result": Jsonb(handed.result),
                "command_id": handed.command_id,
                "queue": queue_name,
                "msg_id": msg_id,
            },
        ).fetchone()
        deleted, ours = (row[0], row[1]) if row is not None else (False, None)
        if ours is None:
            logger.warning(
                "No test_command row to store the result in",
                extra={"command_id": str(handed.command_id)},
            )
        elif not ours:  # an earlier (or concurrent) delivery got there first
            logger.info(
                "Command already applied; returning the stored result",
                extra={"command_id": str(handed.command_id)},
            )
        return bool(deleted)
