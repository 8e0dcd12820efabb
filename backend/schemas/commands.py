"""Request shapes of the commands API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.bus import MAX_DOMAIN_LENGTH
from backend.bus.behaviors import Behavior

# A command's status as the JSON API spells it: the one definition (routes, pages, scripts).
CommandStatus = Literal[
    "PENDING", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELED", "IN_TROUBLESHOOTING_QUEUE"
]
# Statuses a command stays in until an operator acts: a page stops watching it there.
TERMINAL_STATUSES: tuple[CommandStatus, ...] = (
    "COMPLETED",
    "FAILED",
    "CANCELED",
    "IN_TROUBLESHOOTING_QUEUE",
)
MAX_BULK = 100_000


# A command type is (domain, name); `domain` may be left out while the name is unique.
DomainField = Field(default=None, min_length=1, max_length=MAX_DOMAIN_LENGTH)


class SendCommandSchema(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command_type: str = Field(min_length=1, max_length=100)
    domain: str | None = DomainField
    payload: dict[str, Any] = Field(default_factory=dict)
    behavior: Behavior


class BehaviorShare(BaseModel):
    model_config = ConfigDict(extra="forbid")

    behavior: Behavior
    count: int = Field(ge=1, le=MAX_BULK)


class BulkSendSchema(BaseModel):
    """Either `count` commands with one `behavior`, or a `mix` of behaviors with counts."""

    model_config = ConfigDict(extra="forbid")

    command_type: str = Field(min_length=1, max_length=100)
    domain: str | None = DomainField
    count: int | None = Field(default=None, ge=1, le=MAX_BULK)
    behavior: Behavior | None = None
    mix: list[BehaviorShare] | None = Field(default=None, min_length=1)
    payload: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_form(self) -> BulkSendSchema:
        if self.mix is not None:
            if self.behavior is not None or self.count is not None:
                raise ValueError("give either mix, or count with behavior, not both")
            if sum(share.count for share in self.mix) > MAX_BULK:
                raise ValueError(f"mix adds up to more than {MAX_BULK} commands")
        elif self.behavior is None or self.count is None:
            raise ValueError("count and behavior are required (or give mix)")
        return self

    def shares(self) -> list[tuple[Behavior, int]]:
        if self.mix is not None:
            return [(share.behavior, share.count) for share in self.mix]
        assert self.behavior is not None and self.count is not None
        return [(self.behavior, self.count)]


class CommandFilterSchema(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: CommandStatus | None = None
    domain: str | None = Field(default=None, max_length=MAX_DOMAIN_LENGTH)
    command_type: str | None = Field(default=None, max_length=100)
    created_after: datetime | None = None
    created_before: datetime | None = None
    test_id: str | None = Field(default=None, max_length=200)
    page: int = Field(default=1, ge=1, le=100_000)
    page_size: int = Field(default=25, ge=1, le=200)


class TsqBulkSchema(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["retry", "cancel", "complete"]
    command_ids: list[str] = Field(min_length=1, max_length=1000)


class TsqActionSchema(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=1000)
    result: dict[str, Any] | None = None
    operator: str | None = Field(default=None, max_length=100)
