"""Scripted behaviors: validation on the way in, outcomes per type and attempt (no database)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from commandbus.exceptions import PermanentCommandError, TransientCommandError
from pydantic import ValidationError

from backend.bus.behaviors import (
    EXPECTED_TSQ,
    Behavior,
    execute_behavior,
    exhausts_retries,
)


def _field_of(exc: ValidationError) -> str:
    return ".".join(str(part) for part in exc.errors()[0]["loc"])


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"type": "explode"}, "type"),
        ({}, "type"),
        ({"type": "success", "execution_time_ms": -1}, "execution_time_ms"),
        ({"type": "success", "execution_time_ms": 600_001}, "execution_time_ms"),
        ({"type": "fail_transient_then_succeed", "transient_failures": -2}, "transient_failures"),
        ({"type": "success", "execution_time_ms": "5"}, "execution_time_ms"),
        ({"type": "success", "execution_time_ms": 5.0}, "execution_time_ms"),
        ({"type": "success", "execution_time_ms": True}, "execution_time_ms"),
        ({"type": "fail_transient_then_succeed", "transient_failures": "2"}, "transient_failures"),
        ({"type": "fail_permanent", "error_code": 42}, "error_code"),
        ({"type": "fail_permanent", "error_code": ""}, "error_code"),
        ({"type": "fail_permanent", "error_message": "x" * 1001}, "error_message"),
        ({"type": "success", "sleep": 10}, "sleep"),
        ({"type": ["success"]}, "type"),
    ],
)
def test_invalid_behaviors_are_rejected_naming_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Behavior.model_validate(raw)
    assert _field_of(raised.value) == field


def test_valid_behavior_keeps_its_values_and_defaults() -> None:
    behavior = Behavior.model_validate(
        {"type": "fail_permanent", "error_code": "INVALID_DATA", "error_message": "bad"}
    )
    assert behavior.type == "fail_permanent"
    assert behavior.execution_time_ms == 0
    assert behavior.transient_failures == 0
    assert behavior.model_dump(exclude_none=True) == {
        "type": "fail_permanent",
        "transient_failures": 0,
        "execution_time_ms": 0,
        "error_code": "INVALID_DATA",
        "error_message": "bad",
    }


@pytest.mark.parametrize(
    ("failures", "max_attempts", "operator_retries"),
    [(0, 3, 0), (2, 3, 0), (4, 5, 0), (3, 3, 1), (5, 3, 1), (1, 1, 1), (6, 3, 2), (5, 2, 2)],
)
def test_failures_at_or_above_max_attempts_reach_the_tsq_then_complete(
    failures: int, max_attempts: int, operator_retries: int
) -> None:
    """Accepted either way; at max_attempts or more failures the command reaches the TSQ,
    and completes after failures // max_attempts operator retries."""
    behavior = Behavior(type="fail_transient_then_succeed", transient_failures=failures)
    outlook = exhausts_retries(behavior, max_attempts)
    if operator_retries == 0:
        assert outlook is None
        return
    assert outlook is not None
    assert outlook.operator_retries == operator_retries
    answer = outlook.as_json()
    assert answer["expected"] == EXPECTED_TSQ == "troubleshooting_queue"
    assert answer["operator_retries"] == operator_retries
    assert f"max_attempts {max_attempts}" in answer["note"]
    assert "troubleshooting queue" in answer["note"]
    # Deliver until it succeeds, counting over its whole life: every max_attempts failures
    # exhaust the attempts (a TSQ visit, then an operator retry).
    failures = 0
    for delivery in range(1, 1000):
        try:
            execute_behavior(behavior, delivery)
        except TransientCommandError:
            failures += 1
        else:
            break
    assert failures // max_attempts == operator_retries


@pytest.mark.parametrize("kind", ["success", "fail_permanent", "fail_transient", "timeout"])
def test_retry_outlook_only_concerns_transient_then_succeed(kind: str) -> None:
    behavior = Behavior.model_validate({"type": kind, "transient_failures": 10})
    assert exhausts_retries(behavior, 3) is None


@pytest.mark.parametrize("attempt", [1, 2, 5])
def test_success_returns_ok_on_every_attempt(attempt: int) -> None:
    assert execute_behavior(Behavior(type="success"), attempt) == {
        "status": "ok",
        "attempt": attempt,
    }


def test_fail_permanent_raises_its_code_and_message() -> None:
    behavior = Behavior(type="fail_permanent", error_code="INVALID_DATA", error_message="no")
    with pytest.raises(PermanentCommandError) as raised:
        execute_behavior(behavior, 1)
    assert raised.value.code == "INVALID_DATA"
    assert raised.value.error_message == "no"


def test_fail_permanent_has_default_code_and_message() -> None:
    with pytest.raises(PermanentCommandError) as raised:
        execute_behavior(Behavior(type="fail_permanent"), 1)
    assert raised.value.code == "PERMANENT_ERROR"
    assert raised.value.error_message == "Simulated permanent failure"


@pytest.mark.parametrize("attempt", [1, 2, 3, 50])
def test_fail_transient_fails_on_every_attempt(attempt: int) -> None:
    with pytest.raises(TransientCommandError) as raised:
        execute_behavior(Behavior(type="fail_transient"), attempt)
    assert raised.value.code == "TRANSIENT_ERROR"
    assert f"attempt {attempt}" in raised.value.error_message


def test_fail_transient_uses_given_code() -> None:
    behavior = Behavior(type="fail_transient", error_code="DB_DOWN", error_message="try later")
    with pytest.raises(TransientCommandError) as raised:
        execute_behavior(behavior, 1)
    assert (raised.value.code, raised.value.error_message) == ("DB_DOWN", "try later")


def test_transient_then_succeed_fails_n_times_then_succeeds() -> None:
    behavior = Behavior(type="fail_transient_then_succeed", transient_failures=2)
    for attempt in (1, 2):
        with pytest.raises(TransientCommandError):
            execute_behavior(behavior, attempt)
    assert execute_behavior(behavior, 3) == {"status": "ok", "attempt": 3}


def test_transient_then_succeed_with_zero_failures_succeeds_at_once() -> None:
    behavior = Behavior(type="fail_transient_then_succeed", transient_failures=0)
    assert execute_behavior(behavior, 1)["status"] == "ok"


def test_timeout_hangs_only_on_first_delivery() -> None:
    behavior = Behavior(type="timeout", execution_time_ms=150)
    started = time.perf_counter()
    assert execute_behavior(behavior, 1) == {"status": "ok", "attempt": 1}
    first = time.perf_counter() - started
    started = time.perf_counter()
    assert execute_behavior(behavior, 2) == {"status": "ok", "attempt": 2}
    second = time.perf_counter() - started
    assert first >= 0.15
    assert second < 0.1


def test_execution_time_is_spent_before_the_outcome() -> None:
    behavior = Behavior(type="fail_permanent", execution_time_ms=120)
    started = time.perf_counter()
    with pytest.raises(PermanentCommandError):
        execute_behavior(behavior, 1)
    assert time.perf_counter() - started >= 0.12
