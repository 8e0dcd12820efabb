"""The worker's handler for test commands: load the row, run its behavior, store the result once."""

from __future__ import annotations

import logging
from typing import Any

from commandbus import HandlerRegistry
from commandbus.models import Command, HandlerContext
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from backend.bus.behaviors import Behavior, execute_behavior
from backend.bus.log_context import CommandIds
from backend.utils.correlation import correlation_scope

logger = logging.getLogger(__name__)


class TestCommandHandler:
    """Idempotent: a redelivered command that already has a result returns it unchanged."""

    __test__ = False

    def __init__(self, pool: ConnectionPool[Any], ids: CommandIds | None = None) -> None:
        self.pool = pool
        self.ids = ids or CommandIds()

    def __call__(self, command: Command, context: HandlerContext) -> dict[str, Any]:
        with self.pool.connection() as conn:
            row = conn.execute(
                "UPDATE test_command SET handler_runs = handler_runs + 1 WHERE command_id = %s"
                " RETURNING behavior, correlation_id, test_id, result",
                (command.command_id,),
            ).fetchone()
        if row is None:
            raise LookupError(f"No test_command row for command {command.command_id}")
        behavior_json, correlation_id, test_id, existing = row
        self.ids.remember(str(command.command_id), correlation_id, test_id)
        with correlation_scope(correlation_id, test_id):
            fields = {"command_id": str(command.command_id), "attempt": context.attempt}
            if existing is not None:
                logger.info("Command already applied; returning stored result", extra=fields)
                return dict(existing)
            behavior = Behavior.model_validate(behavior_json)
            logger.info("Handling %s (%s)", command.command_type, behavior.type, extra=fields)
            try:
                result = execute_behavior(behavior, context.attempt)
            except Exception as exc:
                logger.info("Command attempt failed: %s", exc, extra=fields)
                raise
            return self._store_once(command, result, fields)

    def _store_once(
        self, command: Command, result: dict[str, Any], fields: dict[str, Any]
    ) -> dict[str, Any]:
        with self.pool.connection() as conn:
            stored = conn.execute(
                "UPDATE test_command SET result = %s, processed_at = NOW()"
                " WHERE command_id = %s AND result IS NULL RETURNING result",
                (Jsonb(result), command.command_id),
            ).fetchone()
            if stored is None:  # a concurrent delivery got there first
                again = conn.execute(
                    "SELECT result FROM test_command WHERE command_id = %s",
                    (command.command_id,),
                ).fetchone()
                logger.info("Concurrent delivery already applied the result", extra=fields)
                return dict(again[0]) if again and again[0] else result
        logger.info("Command succeeded", extra=fields)
        return result


def register_handlers(
    registry: HandlerRegistry, handler: TestCommandHandler, domain: str, command_types: list[str]
) -> list[str]:
    """Register `handler` for each command type not yet registered; returns the new ones."""
    added = []
    for command_type in command_types:
        if not registry.has_sync_handler(domain, command_type):
            registry.register_sync(domain, command_type, handler)
            added.append(command_type)
    return added
