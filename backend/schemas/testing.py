"""Shapes of the testing endpoints."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ScriptedTaskSchema(BaseModel):
    """A deterministic task: `steps` progress events, optionally failing at one step."""

    model_config = ConfigDict(extra="forbid", strict=True)

    steps: int = Field(ge=1, le=1000)
    step_delay_ms: int = Field(default=0, ge=0, le=60_000)
    fail_at_step: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _fail_step_in_range(self) -> ScriptedTaskSchema:
        if self.fail_at_step is not None and self.fail_at_step > self.steps:
            raise ValueError("fail_at_step must be between 1 and steps")
        return self
