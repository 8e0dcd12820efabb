"""The troubleshooting queue: listed with SQL, acted on through reliable-cmd's operator API."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from commandbus.exceptions import CommandNotFoundError, InvalidOperationError
from commandbus.ops.troubleshooting import TroubleshootingQueue
from psycopg_pool import AsyncConnectionPool

from backend.db import Database
from backend.services.async_bridge import AsyncBridge
from backend.utils.errors import (
    BusinessLogicException,
    InvalidOperationException,
    RecordNotFoundException,
)

logger = logging.getLogger(__name__)

ACTIONS = ("retry", "cancel", "complete")
_RESULT_STATUS = {"retry": "PENDING", "cancel": "CANCELED", "complete": "COMPLETED"}


class TsqService:
    def __init__(self, database: Database, bridge: AsyncBridge) -> None:
        self.database = database
        self.bridge = bridge

    def list_items(self, limit: int = 500) -> dict[str, Any]:
        with self.database.transaction() as conn:
            rows = conn.execute(
                """
                SELECT c.command_id, c.domain, c.command_type, c.attempts, c.max_attempts,
                       c.last_error_type, c.last_error_code, c.last_error_msg,
                       c.created_at, c.updated_at, t.behavior, t.test_id
                FROM commandbus.command c LEFT JOIN test_command t USING (command_id)
                WHERE c.status = 'IN_TROUBLESHOOTING_QUEUE'
                ORDER BY c.updated_at DESC, c.command_id LIMIT %s
                """,
                (limit,),
            ).fetchall()
            total = conn.execute(
                "SELECT count(*) FROM commandbus.command WHERE status = 'IN_TROUBLESHOOTING_QUEUE'"
            ).fetchone()
        items = [
            {
                "command_id": str(row[0]),
                "domain": row[1],
                "command_type": row[2],
                "attempts": row[3],
                "max_attempts": row[4],
                "last_error": {"type": row[5], "code": row[6], "message": row[7]},
                "created_at": row[8].isoformat(),
                "updated_at": row[9].isoformat(),
                "behavior": row[10],
                "test_id": row[11],
            }
            for row in rows
        ]
        return {"items": items, "total": total[0] if total else 0}

    def act(
        self,
        action: str,
        command_id: uuid.UUID,
        reason: str | None = None,
        result: dict[str, Any] | None = None,
        operator: str | None = None,
    ) -> dict[str, Any]:
        """Retry, cancel or complete one command in the TSQ; 409 when it is not there."""
        domain = self._domain_of(command_id)

        async def operate(pool: AsyncConnectionPool[Any]) -> None:
            tsq = TroubleshootingQueue(pool)
            if action == "retry":
                await tsq.operator_retry(domain, command_id, operator=operator)
            elif action == "cancel":
                await tsq.operator_cancel(
                    domain, command_id, reason or "Canceled by operator", operator=operator
                )
            else:
                await tsq.operator_complete(
                    domain, command_id, result_data=result, operator=operator
                )

        try:
            self.bridge.run(operate)
        except CommandNotFoundError:
            raise RecordNotFoundException("Command", command_id) from None
        except InvalidOperationError as exc:
            raise InvalidOperationException(str(exc), error_code="NOT_IN_TSQ") from None
        logger.info(
            "TSQ %s of command %s", action, command_id, extra={"command_id": str(command_id)}
        )
        return {"command_id": str(command_id), "status": _RESULT_STATUS[action]}

    def act_many(self, action: str, command_ids: list[str]) -> list[dict[str, Any]]:
        """Apply one action to many ids; each gets its own outcome (no all-or-nothing)."""
        results = []
        for raw in command_ids:
            try:
                outcome = self.act(action, _parse(raw))
            except BusinessLogicException as exc:
                results.append(
                    {"command_id": raw, "ok": False, "error": exc.message, "code": exc.error_code}
                )
            else:
                results.append({"command_id": raw, "ok": True, "status": outcome["status"]})
        return results

    def _domain_of(self, command_id: uuid.UUID) -> str:
        with self.database.transaction() as conn:
            row = conn.execute(
                "SELECT domain FROM commandbus.command WHERE command_id = %s", (command_id,)
            ).fetchone()
        if row is None:
            raise RecordNotFoundException("Command", command_id)
        return str(row[0])


def _parse(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise RecordNotFoundException("Command", raw) from None
