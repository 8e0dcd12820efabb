"""Request and response shapes of the command types API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from backend.bus import MAX_DOMAIN_LENGTH


class CommandTypeCreateSchema(BaseModel):
    model_config = ConfigDict(extra="forbid")

    domain: str = Field(min_length=1, max_length=MAX_DOMAIN_LENGTH, pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    description: str = Field(default="", max_length=1000)
    default_behavior: dict[str, Any] = Field(default_factory=lambda: {"type": "success"})


class CommandTypeResponseSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    domain: str
    name: str
    description: str
    default_behavior: dict[str, Any]
    created_at: datetime
    updated_at: datetime
