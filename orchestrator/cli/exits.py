"""The CLI's exit codes, one name each (the parser's epilog lists them for users)."""

from __future__ import annotations

from orchestrator.arguments import EXIT_USAGE

__all__ = [
    "EXIT_NOT_EXECUTABLE",
    "EXIT_NOT_FOUND",
    "EXIT_SERVICE_EXITED",
    "EXIT_STACK_FAILED",
    "EXIT_TEARDOWN_FAILED",
    "EXIT_USAGE",
]

EXIT_STACK_FAILED = 3  # the stack did not start
EXIT_TEARDOWN_FAILED = 4  # CMD passed but stopping the stack failed (details printed)
EXIT_SERVICE_EXITED = 5  # a service of the stack exited while CMD ran
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127
