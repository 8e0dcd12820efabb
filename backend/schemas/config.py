"""Worker and retry parameters (seed: "Configurable Parameters"), stored in the database."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, model_validator


class WorkerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    visibility_timeout: int = Field(default=30, ge=1, le=3600)
    concurrency: int = Field(default=4, ge=1, le=64)
    poll_interval: float = Field(default=1.0, gt=0, le=60)
    batch_size: int = Field(default=10, ge=1, le=1000)


class RetryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=3, ge=1, le=20)
    base_delay_ms: int = Field(default=1000, ge=0, le=3_600_000)
    max_delay_ms: int = Field(default=60_000, ge=0, le=3_600_000)
    backoff_multiplier: float = Field(default=2.0, ge=1.0, le=10.0)

    @model_validator(mode="after")
    def _max_not_below_base(self) -> RetryConfig:
        if self.max_delay_ms < self.base_delay_ms:
            raise ValueError("max_delay_ms must be >= base_delay_ms")
        return self

    def backoff_schedule(self) -> list[int]:
        """Seconds before each retry (the bus takes whole seconds)."""
        delays = []
        for retry in range(max(1, self.max_attempts - 1)):
            delay_ms = min(self.base_delay_ms * self.backoff_multiplier**retry, self.max_delay_ms)
            delays.append(math.ceil(delay_ms / 1000))
        return delays


class AppConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    worker: WorkerConfig = Field(default_factory=WorkerConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
