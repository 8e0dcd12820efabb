"""Who owns a run's resources, read from the resources themselves.

Every process a run starts carries `CI_STACK_OWNER` in its environment, every container and
network the `ci-stack.owner` label, every embedded database dir an owner file: the host, pid
and start time of the orchestrator process that made it. A resource is provably orphaned
when its owner was on this host and that process (same pid *and* start time) is gone. This
needs no registry, so it holds whatever TMPDIR or user a run was started with.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Literal

from orchestrator.proc import ProcessInfo, process_is

OwnerState = Literal["alive", "dead", "unknown"]


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    start_ticks: int

    @classmethod
    def current(cls) -> Owner:
        me = ProcessInfo.of(os.getpid())
        return cls(socket.gethostname(), os.getpid(), me.start_ticks if me else 0)

    def encode(self) -> str:
        return f"{self.host}/{self.pid}/{self.start_ticks}"

    @classmethod
    def decode(cls, text: str | None) -> Owner | None:
        try:
            host, pid, ticks = (text or "").rsplit("/", 2)
            return cls(host, int(pid), int(ticks))
        except ValueError:
            return None

    def state(self) -> OwnerState:
        if self.host != socket.gethostname():
            return "unknown"  # another machine's process: we can't look
        return "alive" if process_is(self.pid, self.start_ticks) else "dead"

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}"


def keep_reason(run_id: str, owner_text: str | None) -> str | None:
    """Why a resource of `run_id` must be kept, or None when its owner is provably dead."""
    owner = Owner.decode(owner_text)
    if owner is None:
        return f"run {run_id} records no owner, so it may be alive (clean --run-id removes it)"
    state = owner.state()
    if state == "alive":
        return f"run {run_id} is alive ({owner})"
    if state == "unknown":
        return f"run {run_id} belongs to {owner}, which this host cannot check"
    return None
