"""The one reader of /proc: process state, start time, working directory, environment."""

from __future__ import annotations

import os
import select
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    comm: str
    state: str  # "Z" for a zombie
    start_ticks: int  # since boot: with the pid, names one process for its whole life

    @classmethod
    def of(cls, pid: int) -> ProcessInfo | None:
        try:
            raw = (PROC / str(pid) / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return None
        # "pid (comm) state ppid ..." - comm may hold spaces and parentheses.
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        return cls(pid, comm, fields[0], int(fields[19]))

    @classmethod
    def all(cls) -> Iterator[ProcessInfo]:
        for entry in PROC.iterdir():
            if entry.name.isdigit():
                info = cls.of(int(entry.name))
                if info is not None:
                    yield info

    @property
    def alive(self) -> bool:
        return self.state != "Z"


def process_exists(pid: int) -> bool:
    """True while `pid` runs (a zombie is gone for our purposes)."""
    info = ProcessInfo.of(pid)
    return info is not None and info.alive


def process_is(pid: int, start_ticks: int) -> bool:
    """True while the process that had `start_ticks` still runs as `pid` (no pid reuse)."""
    info = ProcessInfo.of(pid)
    return info is not None and info.alive and info.start_ticks == start_ticks


def process_cwd(pid: int) -> str | None:
    try:
        return os.readlink(PROC / str(pid) / "cwd")
    except OSError:
        return None


def process_environment(pid: int) -> dict[str, str]:
    """Its environment (empty when unreadable: another user's, or gone)."""
    try:
        raw = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            # A pidfd turns readable when the process exits.
            select.select([fd], [], [], max(0.0, deadline - time.perf_counter()))
        finally:
            os.close(fd)
