"""Sending test commands (one or in bulk) and reading them back with their audit trail."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from commandbus import SendRequest
from commandbus.sync import SyncCommandBus
from psycopg import Connection
from psycopg.types.json import Jsonb

from backend.bus import queue_name
from backend.bus.behaviors import Behavior, exhausts_retries
from backend.db import Database
from backend.schemas.commands import CommandFilterSchema
from backend.services.config_service import load_config
from backend.services.task_service import ProgressReporter, TaskAborted, TaskFunction
from backend.services.worker_registry import WorkerRegistry
from backend.utils.errors import (
    InvalidOperationException,
    RecordNotFoundException,
    RequestValidationException,
)
from backend.utils.reset_lock import ResetLock

logger = logging.getLogger(__name__)

STATUS_KEYS = {
    "PENDING": "pending",
    "IN_PROGRESS": "in_progress",
    "COMPLETED": "completed",
    "FAILED": "failed",
    "CANCELED": "canceled",
    "IN_TROUBLESHOOTING_QUEUE": "in_tsq",
}
_BULK_CHUNK = 1000

_SUMMARY_COLUMNS = """
    c.command_id, c.domain, c.command_type, c.status, c.attempts, c.max_attempts,
    c.created_at, c.updated_at, t.behavior, c.last_error_code, c.last_error_msg, t.test_id
"""


def _as_uuid_or_none(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


class DatabaseResetDuringTask(TaskAborted):
    """A testing reset dropped the tables a running bulk send was writing to."""


def bus_data(
    behavior: dict[str, Any], correlation_id: str | None, test_id: str | None
) -> dict[str, Any]:
    """The bus message's data: the behavior and the ids, as in test_command.

    The worker needs no query to learn what to do (backend/bus/handlers.py), and knows the
    ids before the library logs "Received command ..." (backend/bus/log_context.py). The
    payload stays in the database only (test_command, or command_payload for a bulk's shared
    payload): the handler never reads it, so copying it into every message only costs space.
    """
    return {
        "behavior": behavior,
        "ids": {"correlation_id": correlation_id, "test_id": test_id},
    }


def parse_command_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise RecordNotFoundException("Command", raw) from None


@dataclass(frozen=True)
class PreparedBulk:
    """A validated bulk send: the task that sends it, and notes about where commands go
    (`field`, `count` and ExhaustsRetries.as_json() per share that reaches the TSQ)."""

    run: TaskFunction
    total: int
    notes: list[dict[str, Any]] = field(default_factory=list)


class CommandService:
    def __init__(
        self, database: Database, bus: SyncCommandBus, gate: ResetLock, workers: WorkerRegistry
    ) -> None:
        self.database = database
        self.bus = bus
        self.gate = gate
        self.workers = workers

    # -- sending --------------------------------------------------------------------------

    def _resolve_type(
        self, conn: Connection[Any], command_type: str, domain: str | None
    ) -> tuple[int, str, str]:
        """A command type is (domain, name); a bare name must be unique across domains."""
        if domain is not None:
            rows = conn.execute(
                "SELECT id, domain, name FROM command_type WHERE name = %s AND domain = %s",
                (command_type, domain),
            ).fetchall()
        else:
            rows = conn.execute(
                "SELECT id, domain, name FROM command_type WHERE name = %s ORDER BY domain",
                (command_type,),
            ).fetchall()
        if not rows:
            where = f" in domain {domain!r}" if domain is not None else ""
            raise RequestValidationException(
                "command_type",
                f"unknown command type {command_type!r}{where}; see /api/command-types",
            )
        if len(rows) > 1:
            domains = [row[1] for row in rows]
            raise InvalidOperationException(
                f"Command type {command_type!r} exists in several domains "
                f'({", ".join(domains)}); say which with "domain"',
                error_code="AMBIGUOUS_COMMAND_TYPE",
                details={"command_type": command_type, "domains": domains},
            )
        type_id, found_domain, name = rows[0]
        return type_id, found_domain, name

    def _max_attempts(self, conn: Connection[Any], domain: str) -> int:
        """What the live workers of `domain` use (they decide retries); the stored config
        when none is running."""
        live = self.workers.live_max_attempts(conn, domain)
        return live if live is not None else load_config(conn).retry.max_attempts

    def send(
        self,
        command_type: str,
        payload: dict[str, Any],
        behavior: Behavior,
        correlation_id: str | None,
        test_id: str | None,
        domain: str | None = None,
    ) -> dict[str, Any]:
        """Insert the test_command row and send on the bus in one transaction."""
        command_id = uuid.uuid4()
        behavior_json = behavior.model_dump(exclude_none=True)
        with self.gate.writing(), self.database.transaction() as conn:
            type_id, domain, name = self._resolve_type(conn, command_type, domain)
            max_attempts = self._max_attempts(conn, domain)
            outlook = exhausts_retries(behavior, max_attempts)
            conn.execute(
                """
                INSERT INTO test_command (command_id, command_type_id, payload, behavior,
                    correlation_id, test_id)
                VALUES (%s, %s, %s, %s, %s, %s)
                """,
                (
                    command_id,
                    type_id,
                    Jsonb(payload),
                    Jsonb(behavior_json),
                    correlation_id,
                    test_id,
                ),
            )
            with _queue_must_exist(domain):
                self.bus.send(
                    domain,
                    name,
                    command_id,
                    bus_data(behavior_json, correlation_id, test_id),
                    correlation_id=_as_uuid_or_none(correlation_id),
                    max_attempts=max_attempts,
                    conn=conn,
                )
        logger.info(
            "Sent %s command %s (%s)%s",
            name,
            command_id,
            behavior.type,
            f"; {outlook.note()}" if outlook else "",
            extra={"command_id": str(command_id)},
        )
        sent = {"command_id": str(command_id), "status": "PENDING", "domain": domain}
        return {**sent, **outlook.as_json()} if outlook else sent

    def bulk_task(
        self,
        command_type: str,
        shares: list[tuple[Behavior, int]],
        payload: dict[str, Any],
        correlation_id: str | None,
        test_id: str | None,
        mixed: bool = False,
        domain: str | None = None,
    ) -> PreparedBulk:
        """Validate now (so bad input is a 400), send later as a background task.

        `mixed`: the request gave a `mix`, so notes name `mix.<i>.behavior` fields.
        A non-empty payload is stored once (command_payload) and shared by every command.
        A testing reset during the send ends the task with a clear failure."""
        generation = self.gate.generation
        with self.database.transaction() as conn:
            type_id, domain, name = self._resolve_type(conn, command_type, domain)
            max_attempts = self._max_attempts(conn, domain)
        notes = []
        for index, (behavior, count) in enumerate(shares):
            outlook = exhausts_retries(behavior, max_attempts)
            if outlook is not None:
                where = f"mix.{index}.behavior" if mixed else "behavior"
                notes.append({"field": where, "count": count, **outlook.as_json()})
        # One dict per share, shared by its commands (and serialized once per chunk).
        dumped = [(behavior.model_dump(exclude_none=True), count) for behavior, count in shares]
        plan = [behavior for behavior, count in dumped for _ in range(count)]
        total = len(plan)

        def run(reporter: ProgressReporter) -> dict[str, Any]:
            sent = 0
            payload_id = self._store_shared_payload(payload, generation, sent, total)
            for start in range(0, total, _BULK_CHUNK):
                chunk = plan[start : start + _BULK_CHUNK]
                with self.gate.writing() as now:
                    _check_generation(generation, now, sent, total)
                    self._send_chunk(
                        type_id,
                        domain,
                        name,
                        chunk,
                        payload_id,
                        max_attempts,
                        correlation_id,
                        test_id,
                    )
                sent += len(chunk)
                reporter.progress(f"Sent {sent} of {total}", sent / total, sent=sent, total=total)
            logger.info("Bulk send of %d %s commands complete", total, name)
            return {"sent": sent, "total": total}

        return PreparedBulk(run, total, notes)

    def _store_shared_payload(
        self, payload: dict[str, Any], generation: int, sent: int, total: int
    ) -> int | None:
        """The id of the bulk's payload, stored once; None for an empty payload."""
        if not payload:
            return None
        with self.gate.writing() as now, self.database.transaction() as conn:
            _check_generation(generation, now, sent, total)
            row = conn.execute(
                "INSERT INTO command_payload (payload) VALUES (%s) RETURNING id", (Jsonb(payload),)
            ).fetchone()
        assert row is not None
        return int(row[0])

    def _send_chunk(
        self,
        type_id: int,
        domain: str,
        name: str,
        behaviors: list[dict[str, Any]],
        payload_id: int | None,
        max_attempts: int,
        correlation_id: str | None,
        test_id: str | None,
    ) -> None:
        ids = [uuid.uuid4() for _ in behaviors]
        bus_correlation = _as_uuid_or_none(correlation_id)
        # Shared payload: the row points at it; an empty one is stored inline ('{}').
        inline_payload = None if payload_id is not None else "{}"
        behavior_texts: dict[int, str] = {}
        with self.database.transaction() as conn:
            with conn.cursor().copy(
                "COPY test_command (command_id, command_type_id, payload, payload_id, behavior,"
                " correlation_id, test_id) FROM STDIN"
            ) as copy:
                for command_id, behavior in zip(ids, behaviors, strict=True):
                    text = behavior_texts.get(id(behavior))
                    if text is None:
                        text = behavior_texts[id(behavior)] = json.dumps(behavior)
                    copy.write_row(
                        (
                            command_id,
                            type_id,
                            inline_payload,
                            payload_id,
                            text,
                            correlation_id,
                            test_id,
                        )
                    )
            with _queue_must_exist(domain):
                self.bus.send_batch(
                    [
                        SendRequest(
                            domain=domain,
                            command_type=name,
                            command_id=command_id,
                            data=bus_data(behavior, correlation_id, test_id),
                            correlation_id=bus_correlation,
                            max_attempts=max_attempts,
                        )
                        for command_id, behavior in zip(ids, behaviors, strict=True)
                    ],
                    chunk_size=_BULK_CHUNK,
                    conn=conn,
                )

    # -- reading --------------------------------------------------------------------------

    def list_commands(self, filters: CommandFilterSchema) -> dict[str, Any]:
        clauses: list[str] = []
        params: list[object] = []
        for column, value in (
            ("c.status", filters.status),
            ("c.domain", filters.domain),
            ("c.command_type", filters.command_type),
            ("t.test_id", filters.test_id),
        ):
            if value:
                clauses.append(f"{column} = %s")
                params.append(value)
        if filters.created_after:
            clauses.append("c.created_at >= %s")
            params.append(filters.created_after)
        if filters.created_before:
            clauses.append("c.created_at < %s")
            params.append(filters.created_before)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        offset = (filters.page - 1) * filters.page_size
        base = f"FROM commandbus.command c LEFT JOIN test_command t USING (command_id) {where}"
        with self.database.transaction() as conn:
            total_row = conn.execute(f"SELECT count(*) {base}", params).fetchone()
            rows = conn.execute(
                f"SELECT {_SUMMARY_COLUMNS} {base} ORDER BY c.created_at DESC, c.command_id"
                " LIMIT %s OFFSET %s",
                [*params, filters.page_size, offset],
            ).fetchall()
        return {
            "items": [_summary(row) for row in rows],
            "total": total_row[0] if total_row else 0,
            "page": filters.page,
            "page_size": filters.page_size,
        }

    def get_command(self, command_id: uuid.UUID) -> dict[str, Any]:
        with self.database.transaction() as conn:
            row = conn.execute(
                f"""
                SELECT {_SUMMARY_COLUMNS}, COALESCE(t.payload, p.payload), t.result,
                       t.processed_at, t.correlation_id, c.correlation_id, t.handler_runs
                FROM commandbus.command c LEFT JOIN test_command t USING (command_id)
                LEFT JOIN command_payload p ON p.id = t.payload_id
                WHERE c.command_id = %s
                """,
                (command_id,),
            ).fetchone()
        if row is None:
            raise RecordNotFoundException("Command", command_id)
        detail = _summary(row[:12])
        payload, result, processed_at, app_correlation, bus_correlation, runs = row[12:]
        detail.update(
            {
                "payload": payload,
                "result": result,
                "processed_at": processed_at.isoformat() if processed_at else None,
                "correlation_id": app_correlation
                or (str(bus_correlation) if bus_correlation else None),
                "handler_runs": runs,
                "audit": self.audit_trail(command_id),
            }
        )
        return detail

    def audit_trail(self, command_id: uuid.UUID) -> list[dict[str, Any]]:
        """Events in the order they were recorded.

        Not by timestamp: `ts` is the recording transaction's start (NOW()), so a redelivery
        whose read began before the previous failure committed (backoff 0) gets an earlier
        RECEIVED stamp than that FAILED. The audit id follows the inserts.
        """
        events = sorted(self.bus.get_audit_trail(command_id), key=lambda event: event.audit_id)
        return [
            {
                "event_type": event.event_type,
                "timestamp": event.timestamp.isoformat(),
                "details": event.details or {},
            }
            for event in events
        ]

    def stats(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUS_KEYS.values(), 0)
        with self.database.transaction() as conn:
            for status, count in conn.execute(
                "SELECT status, count(*) FROM commandbus.command GROUP BY status"
            ):
                if status in STATUS_KEYS:
                    counts[STATUS_KEYS[status]] = count
        counts["total"] = sum(counts.values())
        return counts


@contextmanager
def _queue_must_exist(domain: str) -> Iterator[None]:
    """A type whose domain lost its queue (dropped by hand) is a 409, not a 500."""
    try:
        yield
    except psycopg.errors.UndefinedTable:
        queue = queue_name(domain)
        raise InvalidOperationException(
            f"The queue {queue} of domain {domain!r} does not exist, so commands of this type "
            "cannot be sent. Fix: recreate the queue (SELECT pgmq.create(...)) or the type",
            error_code="QUEUE_MISSING",
            details={"domain": domain, "queue": queue},
        ) from None


def _check_generation(started_in: int, now: int, sent: int, total: int) -> None:
    if now != started_in:
        raise DatabaseResetDuringTask(
            f"The database was reset during the bulk send; {sent} of {total} commands had "
            "been sent and were removed by the reset. Send the bulk again."
        )


def _summary(row: tuple[Any, ...]) -> dict[str, Any]:
    (
        command_id,
        domain,
        command_type,
        status,
        attempts,
        max_attempts,
        created_at,
        updated_at,
        behavior,
        error_code,
        error_msg,
        test_id,
    ) = row
    return {
        "command_id": str(command_id),
        "domain": domain,
        "command_type": command_type,
        "status": status,
        "attempts": attempts,
        "max_attempts": max_attempts,
        "created_at": created_at.isoformat(),
        "updated_at": updated_at.isoformat(),
        "behavior": behavior,
        "last_error": {"code": error_code, "message": error_msg}
        if (error_code or error_msg)
        else None,
        "test_id": test_id,
    }
