"""Exceptions raised by the orchestrator: one base class, specific cases below it."""

from __future__ import annotations


class OrchestratorError(Exception):
    """Base class for everything the orchestrator raises on purpose."""


class PrerequisiteMissing(OrchestratorError):
    """Something the stack needs is not on this machine; `fix` says how to get it."""

    def __init__(self, what: str, fix: str) -> None:
        super().__init__(what, fix)
        self.what = what
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.what}. Fix: {self.fix}"


class StackStartError(OrchestratorError):
    """A service did not become ready: which one, what we waited for, what we saw, its log."""

    def __init__(
        self,
        service: str,
        awaited: str,
        last_answer: str,
        log_tail: str = "",
        exit_code: int | None = None,
    ) -> None:
        self.service = service
        self.awaited = awaited
        self.last_answer = last_answer
        self.log_tail = log_tail
        self.exit_code = exit_code
        super().__init__(str(self))

    def __str__(self) -> str:
        state = f"exited with code {self.exit_code}" if self.exit_code is not None else "not ready"
        text = (
            f"{self.service} {state} while waiting for {self.awaited}; "
            f"last answer: {self.last_answer}"
        )
        if self.log_tail:
            text += f"\n--- last lines of {self.service}'s log ---\n{self.log_tail.rstrip()}"
        return text


class StartAborted(StackStartError):
    """A service gave up starting because another one failed first (an echo of that
    failure, never the cause: the Stack reports the sibling's own error instead)."""

    def __init__(self, service: str, awaited: str, reason: str) -> None:
        super().__init__(service, awaited, f"start aborted: {reason}")
        self.reason = reason


class TeardownErrors(OrchestratorError):
    """Every step of a teardown ran; these are the ones that failed."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("teardown failed: " + "; ".join(errors))
