"""One way to run a child in its own process group and stop the whole group.

Used for the local provider's services, the command `orchestrator run` runs, and the test
and benchmark helpers that start backends and workers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any


class ProcessGroup:
    """A started child that leads its own process group (so its children go with it)."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        *,
        capture: bool = True,
        output: Path | None = None,
        cwd: Path | None = None,
        stdin: int | IO[Any] | None = subprocess.DEVNULL,
    ) -> None:
        """Start `argv`; with `capture`, stdout and stderr come together on `.stdout`, or
        into the file `output`; else they are inherited.

        Raises FileNotFoundError / PermissionError like Popen when argv[0] can't run."""
        self.argv = list(argv)
        sink: Any = None
        if output is not None:
            sink = output.open("wb")
        elif capture:
            sink = subprocess.PIPE
        try:
            self.process = subprocess.Popen(
                self.argv,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                stdout=sink,
                stderr=subprocess.STDOUT if sink is not None else None,
                stdin=stdin,
                start_new_session=True,  # own group: stop() signals the child and its children
            )
        finally:
            if output is not None:
                sink.close()  # the child has its own copy

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def stdout(self) -> IO[bytes] | None:
        return self.process.stdout

    def exit_code(self) -> int | None:
        """None while running; else the code (negative N: killed by signal N)."""
        return self.process.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self.process.wait(timeout=timeout)

    def signal(self, signum: int) -> None:
        """Send `signum` to the whole group (a gone group is fine)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    def stop(self, timeout: float, kill_wait: float = 5.0) -> int | None:
        """SIGTERM the group, wait up to `timeout` s, then SIGKILL it; the leader's code.

        A leader that already exited still has its group killed (stray children)."""
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=kill_wait)
        self.signal(signal.SIGKILL)  # whatever of the group is left (e.g. `nohup ... &`)
        return self.process.poll()

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
