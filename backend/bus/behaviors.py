"""Scripted behaviors of test commands: validated on the way in, executed by the handler."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from commandbus.exceptions import PermanentCommandError, TransientCommandError
from pydantic import BaseModel, ConfigDict, Field

BehaviorType = Literal[
    "success", "fail_permanent", "fail_transient", "fail_transient_then_succeed", "timeout"
]


class Behavior(BaseModel):
    """What the handler does with a command (seed: Behavior JSON Schema)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    type: BehaviorType
    transient_failures: int = Field(default=0, ge=0, le=100)
    execution_time_ms: int = Field(default=0, ge=0, le=600_000)
    error_code: str | None = Field(default=None, min_length=1, max_length=100)
    error_message: str | None = Field(default=None, min_length=1, max_length=1000)


EXPECTED_TSQ = "troubleshooting_queue"


@dataclass(frozen=True)
class ExhaustsRetries:
    """A `fail_transient_then_succeed` with at least as many failures as the workers allow
    attempts: it reaches the troubleshooting queue, and completes after `operator_retries`
    operator retries from there (each gives it max_attempts more deliveries, and its
    failures are counted over its whole life)."""

    transient_failures: int
    max_attempts: int

    @property
    def operator_retries(self) -> int:
        return self.transient_failures // self.max_attempts

    def note(self) -> str:
        retries = self.operator_retries
        return (
            f"{self.transient_failures} transient failure(s) with max_attempts "
            f"{self.max_attempts}: the command exhausts its attempts and will reach the "
            f"troubleshooting queue; it completes after {retries} operator "
            f"{'retry' if retries == 1 else 'retries'} from there"
        )

    def as_json(self) -> dict[str, Any]:
        """The fields a send's response gains (`expected`, `operator_retries`, `note`)."""
        return {
            "expected": EXPECTED_TSQ,
            "operator_retries": self.operator_retries,
            "note": self.note(),
        }


def exhausts_retries(behavior: Behavior, max_attempts: int) -> ExhaustsRetries | None:
    """How the behavior reaches the TSQ before it completes, or None when it doesn't."""
    if (
        behavior.type == "fail_transient_then_succeed"
        and behavior.transient_failures >= max_attempts
    ):
        return ExhaustsRetries(behavior.transient_failures, max_attempts)
    return None


# Behaviors whose outcome depends on how often the command was delivered over its whole
# life; the handler counts their deliveries in test_command (the bus's attempt number starts
# again at an operator retry).
LIFETIME_COUNTED: frozenset[BehaviorType] = frozenset({"fail_transient_then_succeed", "timeout"})


def execute_behavior(behavior: Behavior, attempt: int) -> dict[str, Any]:
    """Run the scripted behavior for one delivery; return the result or raise the bus's error.

    `attempt` is 1-based: the command's delivery number over its whole life for
    LIFETIME_COUNTED behaviors. `timeout` sleeps only on its first delivery ever (longer than
    the visibility timeout, so the message is redelivered); later deliveries complete at once.
    `fail_transient_then_succeed` fails `transient_failures` times in total, then succeeds.
    """
    if behavior.type == "timeout":
        if attempt == 1:
            time.sleep(behavior.execution_time_ms / 1000)  # the simulated hang
        return {"status": "ok", "attempt": attempt}
    if behavior.execution_time_ms:
        time.sleep(behavior.execution_time_ms / 1000)  # the simulated work
    if behavior.type == "fail_permanent":
        raise PermanentCommandError(
            code=behavior.error_code or "PERMANENT_ERROR",
            message=behavior.error_message or "Simulated permanent failure",
        )
    if behavior.type == "fail_transient" or (
        behavior.type == "fail_transient_then_succeed" and attempt <= behavior.transient_failures
    ):
        raise TransientCommandError(
            code=behavior.error_code or "TRANSIENT_ERROR",
            message=behavior.error_message or f"Simulated transient failure (attempt {attempt})",
        )
    return {"status": "ok", "attempt": attempt}
