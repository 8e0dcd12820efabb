"""Running CMD under the CLI: its own process group, watched, and signals passed on to it.

- `unwinding_signals()`: while inside, the first SIGINT/SIGTERM raises `Interrupted` (so every
  `finally` tears down); `SignalGuard.hold()` turns later ones into a note (teardown).
- `supervise(cmd, env, broken)`: run CMD until it exits, or until `broken()` says the stack it
  runs against is gone (then SIGINT, SIGTERM, SIGKILL to its group); an `Interrupted` is sent on
  to CMD's group the way a terminal would, then re-raised. Returns CMD's status (128+N for
  signal N). Nothing of CMD's group outlives it.
- `unrunnable(program)`: why `program` cannot run, as a shell would say it (checked before a
  stack is started for nothing).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType

from orchestrator.cli.exits import EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND
from orchestrator.messages import tell
from orchestrator.process_group import ProcessGroup

__all__ = [
    "CMD_STOP_GRACE",
    "WATCH_INTERVAL",
    "Interrupted",
    "SignalGuard",
    "supervise",
    "unrunnable",
    "unwinding_signals",
]

WATCH_INTERVAL = 0.2  # seconds between looks at the stack while CMD runs
CMD_STOP_GRACE = 10.0  # seconds CMD gets after SIGINT before SIGTERM, then SIGKILL
TERM_GRACE = 5.0  # seconds CMD gets after SIGTERM before SIGKILL


class Interrupted(Exception):
    """SIGTERM/SIGINT arrived: unwind so every `finally` tears down."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class SignalGuard:
    """The first SIGINT/SIGTERM unwinds the run; later ones must not cut the teardown short."""

    def __init__(self) -> None:
        self.received: int | None = None

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        if self.received is not None:
            tell("still stopping the stack; please wait")
            return
        self.received = signum
        raise Interrupted(signum)

    def hold(self) -> None:
        """From now on (teardown) signals only print a note."""
        if self.received is None:
            self.received = 0


@contextlib.contextmanager
def unwinding_signals() -> Iterator[SignalGuard]:
    """SIGTERM and SIGINT handled by a SignalGuard inside; the previous handlers after."""
    guard = SignalGuard()
    previous = {s: signal.signal(s, guard) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield guard
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def supervise(cmd: Sequence[str], env: Mapping[str, str], broken: Callable[[], bool]) -> int:
    """Run CMD in its own process group while watching `broken()`; 128+N for a signal."""
    try:
        child = ProcessGroup(list(cmd), dict(env), capture=False, stdin=None)
    except OSError:  # it went away or lost its mode since the check
        code, message = unrunnable(cmd[0]) or (EXIT_NOT_EXECUTABLE, f"cannot run {cmd[0]}")
        tell(message)
        return code
    try:
        code = _watch(child, broken)
    except Interrupted as interrupt:
        _stop(child, first=interrupt.signum)  # what a terminal would send it
        raise
    finally:
        child.signal(signal.SIGKILL)  # whatever CMD left in its group (`nohup x &`)
    return 128 - code if code < 0 else code


def unrunnable(program: str) -> tuple[int, str] | None:
    """(exit code, message) when `program` cannot be run, as a shell would say it."""
    if "/" not in program:
        if shutil.which(program) is None:
            return EXIT_NOT_FOUND, f"command not found: {program} (is it installed and on PATH?)"
        return None
    path = Path(program)
    try:
        found = path.exists()
    except PermissionError:  # a folder on its way we may not enter (another user's, say)
        return EXIT_NOT_EXECUTABLE, f"command not executable: {program} (permission denied)"
    if not found:
        return EXIT_NOT_FOUND, f"command not found: {program} (no such file)"
    if path.is_dir() or not os.access(path, os.X_OK):
        return EXIT_NOT_EXECUTABLE, (
            f"command not executable: {program} (chmod +x it, or run it through its interpreter)"
        )
    return None


def _watch(child: ProcessGroup, broken: Callable[[], bool]) -> int:
    """Wait for CMD; when `broken()` turns true meanwhile, end CMD (its stack is gone)."""
    while True:
        try:
            code = int(child.wait(timeout=WATCH_INTERVAL))
            broken()  # CMD may have seen the stack break first: let the caller record it
            return code
        except subprocess.TimeoutExpired:
            if broken():
                _stop(child)  # SIGINT first: pytest still writes its reports
                return int(child.wait())


def _stop(child: ProcessGroup, first: int = signal.SIGINT) -> None:
    """`first` (SIGINT: pytest still writes its reports), then SIGTERM, then SIGKILL, to
    CMD's whole group."""
    for signum, grace in ((first, CMD_STOP_GRACE), (signal.SIGTERM, TERM_GRACE)):
        child.signal(signum)
        try:
            child.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
    child.kill()
