"""The OS processes of a server: stopping the postmaster and killing whatever it left."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from orchestrator.proc import ProcessInfo, process_cwd, wait_gone


def stop_postmaster(proc: subprocess.Popen[bytes], data_dir: Path, timeout: float) -> None:
    """SIGINT (fast shutdown), wait up to `timeout`, then SIGKILL every process of the server."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_server(data_dir, timeout)
            proc.wait(timeout=timeout)
    # A postmaster killed by someone else leaves its children running for a moment.
    kill_server(data_dir, timeout)


def _server_processes(data_dir: Path) -> list[int]:
    """Live postgres processes of the server on `data_dir`.

    The postmaster chdirs into its data dir and its children inherit that, while each child
    becomes a session leader of its own: the working directory, not the process group, is
    what ties them together. A pid reused by anything else has another name or directory.
    """
    target = os.path.realpath(data_dir)
    pids = []
    for info in ProcessInfo.all():
        if info.comm == "postgres" and info.alive and process_cwd(info.pid) == target:
            pids.append(info.pid)
    return pids


def kill_server(data_dir: Path, timeout: float) -> list[int]:
    """SIGKILL every process of the server on `data_dir`; wait until they are gone."""
    pids = _server_processes(data_dir)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_gone(pids, timeout)
    return pids
