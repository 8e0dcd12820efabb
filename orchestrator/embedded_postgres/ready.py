"""Readiness: wait until a starting postgres accepts a real connection."""

from __future__ import annotations

import contextlib
import subprocess
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any

import psycopg

from orchestrator.errors import StackStartError


@dataclass(frozen=True)
class PostgresReady:
    """Wait until the server accepts a real connection, failing at once if it exits."""

    timeout: float = 30.0
    interval: float = 0.02

    def wait(self, proc: subprocess.Popen[bytes], conninfo: dict[str, Any], log: Path) -> None:
        awaited = f"a connection on {conninfo['host']} port {conninfo['port']}"
        deadline = perf_counter() + self.timeout
        last_answer = "no attempt yet"
        while True:
            code = proc.poll()
            if code is not None:
                raise StackStartError("postgres", awaited, last_answer, _log_tail(log), code)
            try:
                with psycopg.connect(**conninfo, connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                last_answer = str(exc).strip()
            if perf_counter() >= deadline:
                last_answer += (
                    f" (after {self.timeout:.0f}s; a slow disk or a full /dev/shm delays start-up)"
                )
                raise StackStartError("postgres", awaited, last_answer, _log_tail(log))
            # Pause by waiting on the process itself, so an exit is seen at once.
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=self.interval)


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(log unreadable: {exc})"
    return "\n".join(text.splitlines()[-lines:])
