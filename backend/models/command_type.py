"""A command type row (master data)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class CommandType:
    id: int
    domain: str
    name: str
    description: str
    default_behavior: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    COLUMNS = "id, domain, name, description, default_behavior, created_at, updated_at"

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> CommandType:
        return cls(*row)
