"""Command types: list, create, get, delete (refused while test commands use the type)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from backend.bus import queue_name
from backend.db import Database
from backend.models.command_type import CommandType
from backend.utils.errors import (
    DependencyException,
    InvalidOperationException,
    RecordNotFoundException,
)
from backend.utils.reset_lock import ResetLock


class CommandTypeService:
    def __init__(self, database: Database, gate: ResetLock) -> None:
        self.database = database
        self.gate = gate

    def list_types(self) -> list[CommandType]:
        with self.database.transaction() as conn:
            rows = conn.execute(
                f"SELECT {CommandType.COLUMNS} FROM command_type ORDER BY domain, name"
            ).fetchall()
        return [CommandType.from_row(row) for row in rows]

    def get_type(self, type_id: int) -> CommandType:
        with self.database.transaction() as conn:
            row = conn.execute(
                f"SELECT {CommandType.COLUMNS} FROM command_type WHERE id = %s", (type_id,)
            ).fetchone()
        if row is None:
            raise RecordNotFoundException("Command type", type_id)
        return CommandType.from_row(row)

    def create_type(
        self, domain: str, name: str, description: str, default_behavior: dict[str, Any]
    ) -> CommandType:
        try:
            with self.gate.writing(), self.database.transaction() as conn:
                row = conn.execute(
                    f"""
                    INSERT INTO command_type (domain, name, description, default_behavior)
                    VALUES (%s, %s, %s, %s) RETURNING {CommandType.COLUMNS}
                    """,
                    (domain, name, description, Jsonb(default_behavior)),
                ).fetchone()
                # A new domain needs its queue, or sending a command of this type would fail.
                conn.execute("SELECT pgmq.create(%s)", (queue_name(domain),))
        except psycopg.errors.UniqueViolation:
            raise InvalidOperationException(
                f"Command type {domain}/{name} already exists",
                error_code="ALREADY_EXISTS",
                details={"domain": domain, "name": name},
            ) from None
        assert row is not None
        return CommandType.from_row(row)

    def delete_type(self, type_id: int) -> None:
        with self.gate.writing(), self.database.transaction() as conn:
            found = conn.execute(
                "SELECT id FROM command_type WHERE id = %s FOR UPDATE", (type_id,)
            ).fetchone()
            if found is None:
                raise RecordNotFoundException("Command type", type_id)
            used = conn.execute(
                "SELECT count(*) FROM test_command WHERE command_type_id = %s", (type_id,)
            ).fetchone()
            in_use = used[0] if used else 0
            if in_use:
                raise DependencyException(
                    "Command type", type_id, f"it is used by {in_use} test command(s)"
                )
            conn.execute("DELETE FROM command_type WHERE id = %s", (type_id,))
