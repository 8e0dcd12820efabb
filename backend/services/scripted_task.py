"""A scripted background task for deterministic SSE streams in tests."""

from __future__ import annotations

import time
from typing import Any

from backend.services.task_service import ProgressReporter, TaskAborted, TaskFunction


class ScriptedTaskFailure(TaskAborted):
    """The failure a test asked for: logged as a warning, never as a traceback."""


def scripted_task(steps: int, step_delay_ms: int, fail_at_step: int | None) -> TaskFunction:
    """Report `steps` progress events `step_delay_ms` apart; raise at `fail_at_step`."""

    def run(reporter: ProgressReporter) -> dict[str, Any]:
        for step in range(1, steps + 1):
            time.sleep(step_delay_ms / 1000)  # the simulated work itself
            if fail_at_step == step:
                raise ScriptedTaskFailure(f"Scripted failure at step {step}")
            reporter.progress(f"Step {step} of {steps}", step / steps, step=step, total=steps)
        return {"steps": steps}

    return run
