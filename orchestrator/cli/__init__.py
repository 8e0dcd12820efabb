"""`ci-stack COMMAND ...` (also `python -m orchestrator COMMAND ...`): one parser, a module
per command (`register(commands)` adds its parser; its `execute(args)` returns the status).

Exit codes: CMD's own status; 2 bad option, bad setting or missing prerequisite (one line
saying what and how to fix); 3 the stack did not start; 4 CMD passed but the teardown
failed; 5 a service of the stack exited while CMD ran; 126 CMD is not executable; 127 CMD
was not found; 128+N interrupted by signal N (or CMD killed by signal N).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from orchestrator.arguments import OneLineParser
from orchestrator.cli import (
    browser,
    clean,
    compose,
    github,
    images,
    init,
    merge,
    report,
    reset,
    run,
    up,
)
from orchestrator.cli.exits import (
    EXIT_NOT_EXECUTABLE,
    EXIT_NOT_FOUND,
    EXIT_SERVICE_EXITED,
    EXIT_STACK_FAILED,
    EXIT_TEARDOWN_FAILED,
    EXIT_USAGE,
)
from orchestrator.cli.options import EPILOG
from orchestrator.cli.supervisor import Interrupted, SignalGuard
from orchestrator.errors import OrchestratorError, PrerequisiteMissing, StackStartError
from orchestrator.messages import PROGRAM, tell

__all__ = [
    "EXIT_NOT_EXECUTABLE",
    "EXIT_NOT_FOUND",
    "EXIT_SERVICE_EXITED",
    "EXIT_STACK_FAILED",
    "EXIT_TEARDOWN_FAILED",
    "EXIT_USAGE",
    "Interrupted",
    "SignalGuard",
    "build_parser",
    "main",
]

# In the order `--help` lists them.
COMMANDS = (run, up, reset, clean, images, browser, merge, report, compose, github, init)


def build_parser(prog: str = "python -m orchestrator") -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=prog,
        description="Throwaway test stacks: start, run a command against it, stop.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` (default: this process's arguments), run the command; its exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    invoked = Path(sys.argv[0]).name if sys.argv else ""
    prog = PROGRAM if invoked == PROGRAM else "python -m orchestrator"
    args = build_parser(prog).parse_args(arguments)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return _guarded(lambda: handler(args))


def _guarded(action: Callable[[], int]) -> int:
    try:
        return int(action())
    except PrerequisiteMissing as exc:
        tell(str(exc))
        return EXIT_USAGE
    except StackStartError as exc:
        tell(f"the stack did not start: {exc}")
        return EXIT_STACK_FAILED
    except OrchestratorError as exc:
        tell(str(exc))
        return EXIT_USAGE
