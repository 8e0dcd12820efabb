"""One run owns its artifacts folder: an exclusive lock held for the run's whole life.

The lock is `flock` on `<folder>/.ci-stack-run.json` (released by the kernel when the run
dies, even by SIGKILL), and the file names the run that holds it. A second run aimed at a
held folder is refused with one line naming the live run; a free folder is emptied of an
earlier run's content before the new run writes anything.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from orchestrator.errors import PrerequisiteMissing

LOCK_FILE = ".ci-stack-run.json"


class FolderBusy(PrerequisiteMissing):
    """The artifacts folder belongs to a run that is still going."""


class FolderLock:
    def __init__(self, folder: Path, handle: IO[str]) -> None:
        self.folder = folder
        self._handle = handle

    @classmethod
    @contextlib.contextmanager
    def take(cls, folder: Path, run_id: str) -> Iterator[FolderLock]:
        lock_path = folder / LOCK_FILE
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle = lock_path.open("a+", encoding="utf-8")
        except OSError as exc:
            raise PrerequisiteMissing(
                f"cannot write the artifacts folder {folder} ({exc.strerror or exc})",
                "pass --artifacts (or STACK_ARTIFACTS) a writable folder",
            ) from None
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = _describe(handle.read())
                raise FolderBusy(
                    f"the artifacts folder {folder} is in use by {holder}",
                    "wait for that run to end, or pass --artifacts another folder",
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(
                json.dumps(
                    {
                        "run_id": run_id,
                        "pid": os.getpid(),
                        "host": socket.gethostname(),
                        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    }
                )
            )
            handle.flush()
            yield cls(folder, handle)
        finally:
            handle.close()  # releases the lock

    def clear_folder(self) -> None:
        """Remove an earlier run's files (everything but the lock)."""
        for entry in self.folder.iterdir():
            if entry.name == LOCK_FILE:
                continue
            try:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
            except OSError as exc:
                raise PrerequisiteMissing(
                    f"cannot clear {entry} of the earlier run in {self.folder} "
                    f"({exc.strerror or exc})",
                    "remove it, or pass --artifacts another folder",
                ) from None


def _describe(raw: str) -> str:
    try:
        holder = json.loads(raw)
        return (
            f"run {holder['run_id']} (pid {holder['pid']} on {holder['host']}, "
            f"started {holder['started_at']})"
        )
    except (ValueError, KeyError, TypeError):
        return "another run"
