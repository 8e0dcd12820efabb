"""Master data (command types) kept in a setup file and synced into the database."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg import Connection
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

SETUP_FILE = Path(__file__).resolve().parent.parent / "setup" / "command_types.json"


@dataclass(frozen=True)
class SyncResult:
    added: int
    updated: int
    unchanged: int


def load_setup(path: Path = SETUP_FILE) -> list[dict[str, Any]]:
    types = json.loads(path.read_text())["command_types"]
    if not isinstance(types, list):
        raise ValueError(f"{path}: 'command_types' must be a list")
    return types


def sync_master_data_from_setup(conn: Connection[TupleRow], path: Path = SETUP_FILE) -> SyncResult:
    """Add new types and update changed ones; never deletes (in-use types stay intact)."""
    added = updated = unchanged = 0
    for entry in load_setup(path):
        row = conn.execute(
            """
            INSERT INTO command_type (domain, name, description, default_behavior)
            VALUES (%s, %s, %s, %s)
            ON CONFLICT (domain, name) DO UPDATE
               SET description = EXCLUDED.description,
                   default_behavior = EXCLUDED.default_behavior,
                   updated_at = NOW()
             WHERE (command_type.description, command_type.default_behavior)
                   IS DISTINCT FROM (EXCLUDED.description, EXCLUDED.default_behavior)
            RETURNING (xmax = 0) AS inserted
            """,
            (
                entry["domain"],
                entry["name"],
                entry.get("description", ""),
                Jsonb(entry.get("default_behavior", {"type": "success"})),
            ),
        ).fetchone()
        if row is None:
            unchanged += 1
        elif row[0]:
            added += 1
        else:
            updated += 1
    return SyncResult(added=added, updated=updated, unchanged=unchanged)
