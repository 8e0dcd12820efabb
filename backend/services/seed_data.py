"""The deterministic seed dataset loaded by `POST /api/testing/reset?seed=true`.

One test command per status the UI shows, with fixed ids and timestamps, written straight
into the bus's tables (no queue messages, so workers never pick them up):

| command id (suffix) | status                   | behavior                    |
|---------------------|--------------------------|-----------------------------|
| ...0001             | COMPLETED                | success                     |
| ...0002             | PENDING                  | success                     |
| ...0003             | IN_PROGRESS              | timeout                     |
| ...0004             | FAILED                   | success (business rule)     |
| ...0005             | CANCELED                 | fail_permanent              |
| ...0006             | IN_TROUBLESHOOTING_QUEUE | fail_permanent              |
| ...0007             | IN_TROUBLESHOOTING_QUEUE | fail_transient (exhausted)  |

All ids are `00000000-0000-4000-8000-00000000000N`; timestamps start 2026-01-01T00:00Z.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

SEED_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
DOMAIN = "test"
COMMAND_TYPE = "TestCommand"
QUEUE = "test__commands"


@dataclass(frozen=True)
class SeedCommand:
    number: int
    status: str
    behavior: dict[str, Any]
    attempts: int
    audit: tuple[str, ...]
    error: tuple[str, str, str] | None = None  # (type, code, message)
    result: dict[str, Any] | None = None

    @property
    def command_id(self) -> UUID:
        return UUID(f"00000000-0000-4000-8000-{self.number:012d}")


SEED_COMMANDS: tuple[SeedCommand, ...] = (
    SeedCommand(
        1,
        "COMPLETED",
        {"type": "success"},
        1,
        ("SENT", "RECEIVED", "COMPLETED"),
        result={"status": "ok"},
    ),
    SeedCommand(2, "PENDING", {"type": "success"}, 0, ("SENT",)),
    SeedCommand(
        3, "IN_PROGRESS", {"type": "timeout", "execution_time_ms": 60000}, 1, ("SENT", "RECEIVED")
    ),
    SeedCommand(
        4,
        "FAILED",
        {"type": "success"},
        1,
        ("SENT", "RECEIVED", "FAILED"),
        error=("BUSINESS_RULE", "RULE_VIOLATED", "Seeded business rule failure"),
    ),
    SeedCommand(
        5,
        "CANCELED",
        {"type": "fail_permanent"},
        1,
        ("SENT", "RECEIVED", "MOVED_TO_TSQ", "OPERATOR_CANCEL"),
        error=("PERMANENT", "INVALID_DATA", "Seeded permanent failure"),
    ),
    SeedCommand(
        6,
        "IN_TROUBLESHOOTING_QUEUE",
        {
            "type": "fail_permanent",
            "error_code": "INVALID_DATA",
            "error_message": "Seeded permanent failure",
        },
        1,
        ("SENT", "RECEIVED", "MOVED_TO_TSQ"),
        error=("PERMANENT", "INVALID_DATA", "Seeded permanent failure"),
    ),
    SeedCommand(
        7,
        "IN_TROUBLESHOOTING_QUEUE",
        {"type": "fail_transient"},
        3,
        ("SENT", "RECEIVED", "FAILED", "RECEIVED", "FAILED", "RECEIVED", "MOVED_TO_TSQ"),
        error=("TRANSIENT", "TRANSIENT_ERROR", "Seeded transient failure"),
    ),
)


def load_full_dataset(conn: Connection[TupleRow]) -> int:
    """Insert the seed commands; returns how many were written."""
    type_row = conn.execute(
        "SELECT id FROM command_type WHERE domain = %s AND name = %s", (DOMAIN, COMMAND_TYPE)
    ).fetchone()
    if type_row is None:
        raise RuntimeError("Seed needs command type test/TestCommand: sync master data first")
    for seed in SEED_COMMANDS:
        created = SEED_EPOCH + timedelta(minutes=seed.number)
        updated = created + timedelta(seconds=seed.attempts or 1)
        payload = {"seed": seed.number}
        error_type, error_code, error_msg = seed.error or (None, None, None)
        conn.execute(
            """
            INSERT INTO commandbus.command (domain, queue_name, msg_id, command_id, command_type,
                status, attempts, max_attempts, last_error_type, last_error_code,
                last_error_msg, created_at, updated_at)
            VALUES (%s, %s, NULL, %s, %s, %s, %s, 3, %s, %s, %s, %s, %s)
            """,
            (
                DOMAIN,
                QUEUE,
                seed.command_id,
                COMMAND_TYPE,
                seed.status,
                seed.attempts,
                error_type,
                error_code,
                error_msg,
                created,
                updated,
            ),
        )
        conn.execute(
            "INSERT INTO commandbus.payload_archive (domain, command_id, payload_json, "
            "archived_at) VALUES (%s, %s, %s, %s)",
            (
                DOMAIN,
                seed.command_id,
                Jsonb({"command_id": str(seed.command_id), "data": payload}),
                created,
            ),
        )
        for step, event in enumerate(seed.audit):
            details: dict[str, Any] = {"seed": True}
            if event in ("FAILED", "MOVED_TO_TSQ") and seed.error:
                details.update({"error_code": error_code, "error_msg": error_msg})
            conn.execute(
                "INSERT INTO commandbus.audit (domain, command_id, event_type, ts, details_json)"
                " VALUES (%s, %s, %s, %s, %s)",
                (
                    DOMAIN,
                    seed.command_id,
                    event,
                    created + timedelta(milliseconds=100 * step),
                    Jsonb(details),
                ),
            )
        conn.execute(
            """
            INSERT INTO test_command (command_id, command_type_id, payload, behavior,
                created_at, processed_at, result)
            VALUES (%s, %s, %s, %s, %s, %s, %s)
            """,
            (
                seed.command_id,
                type_row[0],
                Jsonb(payload),
                Jsonb(seed.behavior),
                created,
                updated if seed.status in ("COMPLETED", "FAILED", "CANCELED") else None,
                Jsonb(seed.result) if seed.result is not None else None,
            ),
        )
    return len(SEED_COMMANDS)
