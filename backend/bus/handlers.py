"""The worker's handler for test commands: run the command's behavior, store the result once."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from commandbus import HandlerRegistry
from commandbus.exceptions import PermanentCommandError
from commandbus.models import Command, HandlerContext
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool
from pydantic import ValidationError

from backend.bus.behaviors import LIFETIME_COUNTED, Behavior, execute_behavior
from backend.bus.log_context import CommandIds
from backend.utils.correlation import correlation_scope

logger = logging.getLogger(__name__)

COMMAND_NOT_FOUND = "TEST_COMMAND_NOT_FOUND"
INVALID_BEHAVIOR = "INVALID_BEHAVIOR"


_BEHAVIOR_CACHE_SIZE = 256


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _cache_key(behavior_json: Any) -> tuple[Any, ...] | None:
    """A hashable key for a behavior dict of plain values, or None.

    The value types are part of it: 1 == True, but strict validation tells them apart."""
    if type(behavior_json) is not dict:
        return None
    key = (*behavior_json.items(), *map(type, behavior_json.values()))
    return key if _PLAIN.issuperset(key[len(behavior_json) :]) else None


def command_not_found(command: Command) -> PermanentCommandError:
    """A message without its test_command row (foreign, or its rows were reset): no retry."""
    return PermanentCommandError(
        code=COMMAND_NOT_FOUND,
        message=f"No test_command row for command {command.command_id}",
    )


class TestCommandHandler:
    """Idempotent: the first stored result wins; a redelivery gets that result back.

    The behavior and ids come with the message (CommandService puts them in its data), so a
    success costs at most one statement: count the run and store the result if none is
    stored yet; in the worker even that rides on the completion (backend/bus/completion.py).
    Behaviors that count deliveries over the command's life cost one more, at the start.
    A missing row or an invalid behavior is a permanent failure: retrying can't fix it.
    `pool` should be an autocommit pool (see backend/bus/pools.py).
    """

    __test__ = False

    def __init__(
        self,
        pool: ConnectionPool[Any],
        ids: CommandIds | None = None,
        store_results: bool = True,
    ) -> None:
        self.pool = pool
        self.ids = ids or CommandIds()
        # False in the worker: its completion stores a success's result (completion.py).
        self.store_results = store_results
        self._behaviors: dict[tuple[Any, ...], Behavior] = {}

    def __call__(self, command: Command, context: HandlerContext) -> dict[str, Any]:
        command_id = str(command.command_id)
        behavior_json, correlation_id, test_id = self._behavior_and_ids(command)
        self.ids.remember(command_id, correlation_id, test_id)
        with correlation_scope(correlation_id, test_id):
            fields = {"command_id": command_id, "attempt": context.attempt}
            behavior = self._parse_behavior(command, behavior_json)
            delivery = context.attempt
            if behavior.type in LIFETIME_COUNTED:
                delivery = self._count_delivery(command)
                fields["delivery"] = delivery
            logger.debug("Handling %s (%s)", command.command_type, behavior.type, extra=fields)
            try:
                result = execute_behavior(behavior, delivery)
            except Exception as exc:
                self._count_run(command)
                logger.info("Command attempt failed: %s", exc, extra=fields)
                raise
            if not self.store_results:
                return result
            return self._store_once(command, result, fields)

    def _behavior_and_ids(self, command: Command) -> tuple[Any, str | None, str | None]:
        """From the message when it carries them, else (seeded or foreign messages) the row."""
        data = command.data if isinstance(command.data, dict) else {}
        ids = data.get("ids")
        if "behavior" in data and isinstance(ids, dict):
            return data["behavior"], ids.get("correlation_id"), ids.get("test_id")
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT behavior, correlation_id, test_id FROM test_command WHERE command_id = %s",
                (command.command_id,),
            ).fetchone()
        if row is None:
            raise command_not_found(command)
        return row[0], row[1], row[2]

    def _parse_behavior(self, command: Command, behavior_json: Any) -> Behavior:
        # A bulk's commands share a handful of behaviors: validate each distinct one once.
        key = _cache_key(behavior_json)
        cached = self._behaviors.get(key) if key is not None else None
        if cached is not None:
            return cached
        try:
            behavior = Behavior.model_validate(behavior_json)
        except ValidationError as exc:
            raise PermanentCommandError(
                code=INVALID_BEHAVIOR,
                message=f"Command {command.command_id} has an invalid behavior: "
                f"{exc.errors()[0]['msg'] if exc.errors() else exc}",
            ) from None
        if key is not None:
            if len(self._behaviors) >= _BEHAVIOR_CACHE_SIZE:
                self._behaviors.clear()
            self._behaviors[key] = behavior
        return behavior

    def _count_delivery(self, command: Command) -> int:
        """This delivery's number over the command's whole life (operator retries included)."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "UPDATE test_command SET deliveries = deliveries + 1 WHERE command_id = %s"
                " RETURNING deliveries",
                (command.command_id,),
            ).fetchone()
        if row is None:
            raise command_not_found(command)
        return int(row[0])

    def _count_run(self, command: Command) -> None:
        """Count a failed run; a database error here must not replace the behavior's error."""
        try:
            with self.pool.connection() as conn:
                conn.execute(
                    "UPDATE test_command SET handler_runs = handler_runs + 1 WHERE command_id = %s",
                    (command.command_id,),
                )
        except psycopg.Error as exc:
            logger.warning("Could not count the failed run: %s", exc)

    def _store_once(
        self, command: Command, result: dict[str, Any], fields: dict[str, Any]
    ) -> dict[str, Any]:
        with self.pool.connection() as conn:
            row = conn.execute(
                "UPDATE test_command SET handler_runs = handler_runs + 1,"
                " result = COALESCE(result, %s), processed_at = COALESCE(processed_at, NOW())"
                " WHERE command_id = %s RETURNING result",
                (Jsonb(result), command.command_id),
            ).fetchone()
        if row is None:
            raise command_not_found(command)
        stored = dict(row[0])
        if stored != result:  # an earlier (or concurrent) delivery got there first
            logger.info("Command already applied; returning the stored result", extra=fields)
        return stored


class DomainRegistry(HandlerRegistry):
    """Every command type of the worker's domain runs the test-command handler, including
    types created after the worker started (no restart, no missed first delivery)."""

    def __init__(self, domain: str, handler: TestCommandHandler) -> None:
        super().__init__()
        self.domain = domain
        self.handler = handler

    def get_sync(self, domain: str, command_type: str) -> Any:
        registered = super().get_sync(domain, command_type)
        if registered is None and domain == self.domain:
            return self.handler
        return registered
