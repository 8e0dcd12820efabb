"""Readiness: wait until a starting postgres accepts a real connection."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.readiness import Readiness, postgres_ready


@dataclass(frozen=True)
class PostgresReady:
    """Wait until the server accepts a real connection, failing at once if it exits."""

    timeout: float = 30.0
    interval: float = 0.02

    def wait(self, proc: subprocess.Popen[bytes], conninfo: dict[str, Any], log: Path) -> None:
        Readiness(
            service="postgres",
            awaited=f"a connection on {conninfo['host']} port {conninfo['port']} "
            "(a slow disk or a full /dev/shm delays start-up)",
            probe=postgres_ready(conninfo),
            exit_code=proc.poll,
            log_tail=lambda: _log_tail(log),
            poll_interval=self.interval,
        ).wait(self.timeout)


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(log unreadable: {exc})"
    return "\n".join(text.splitlines()[-lines:])
