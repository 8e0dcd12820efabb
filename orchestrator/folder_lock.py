"""A run owns its artifacts folder, and the tool empties only folders that are provably its own.

Ownership rule (DESIGN §3b): a run may take a folder that is new, empty, or holds the marker
of an earlier run — `.ci-stack-run.json` (every version of the tool has left it there). Any
other folder is refused before anything starts and left exactly as it was (not even the
marker is created), as is a folder that contains the working directory or the project.

The marker is also the lock: `flock` on it for the run's whole life (released by the kernel
when the run dies, even by SIGKILL), and its text names the run that holds it. Taking the
folder (check, lock, write that name) happens under a short `flock` on the folder itself, and
a refused run reads the name under that same lock: so it always reads a complete record,
never the empty file of a run that is still writing it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from orchestrator.artifacts import layout
from orchestrator.config import find_pyproject
from orchestrator.errors import PrerequisiteMissing

MARKER = ".ci-stack-run.json"
TAKE_TIMEOUT = 10.0  # seconds to wait for another run that is taking the same folder right now
# What an earlier version's pytest evidence folder (`artifacts/pytest/`) held: no marker.
_EARLIER_EVIDENCE = {
    layout.RESULTS_FILE,
    layout.RUN_FILE,
    layout.SUMMARY_FILE,
    layout.REPORT_FILE,
    layout.JUNIT_FILE,
    layout.TESTS_DIR,
}


class FolderBusy(PrerequisiteMissing):
    """The artifacts folder belongs to a run that is still going."""


class FolderNotOurs(PrerequisiteMissing):
    """The folder holds something that is not an earlier run's: it is never emptied."""


class FolderLock:
    """A taken artifacts folder: emptied of an earlier run's files, locked until closed."""

    def __init__(self, folder: Path, handle: IO[str]) -> None:
        self.folder = folder
        self._handle = handle

    @classmethod
    @contextlib.contextmanager
    def take(cls, folder: Path, run_id: str, option: str = "--artifacts") -> Iterator[FolderLock]:
        """Check that `folder` may be emptied, lock it for `run_id`, empty it; `option` is the
        setting that named it (for the one-line refusals)."""
        refuse_protected(folder, option)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            directory = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise _unwritable(folder, option, exc) from None
        try:
            with _flocked(directory, folder, option):
                handle = _lock_marker(folder, option)
                _write_record(handle, run_id)
        finally:
            os.close(directory)
        try:
            lock = cls(folder, handle)
            lock.clear_folder(option)
            yield lock
        finally:
            handle.close()  # releases the lock; the marker stays: the folder is a run's

    def clear_folder(self, option: str = "--artifacts") -> None:
        """Remove the earlier run's files (everything but the marker)."""
        for entry in self.folder.iterdir():
            if entry.name == MARKER:
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
                    f"remove it, or pass {option} another folder",
                ) from None


def refuse_protected(folder: Path, option: str) -> None:
    """A folder holding the project, or the working directory, is never a run's folder."""
    resolved = folder.resolve()
    pyproject = find_pyproject()
    cwd = Path.cwd().resolve()
    if pyproject is not None and pyproject.parent.is_relative_to(resolved):
        held = f"the project ({pyproject.parent})"
    elif cwd != resolved and cwd.is_relative_to(resolved):
        held = f"the working directory ({cwd})"
    else:
        return
    raise FolderNotOurs(
        f"the artifacts folder {folder} contains {held}; a run empties its folder, so it "
        "must be one of its own",
        f"pass {option} a new or empty folder, e.g. artifacts/stack",
    )


@contextlib.contextmanager
def _flocked(directory: int, folder: Path, option: str) -> Iterator[None]:
    """Hold `flock` on the folder itself while a run takes it (milliseconds)."""
    deadline = time.perf_counter() + TAKE_TIMEOUT
    while True:
        try:
            fcntl.flock(directory, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.perf_counter() > deadline:
                raise FolderBusy(
                    f"the artifacts folder {folder} is being taken by another run for "
                    f"over {TAKE_TIMEOUT:.0f} s",
                    f"check for a stopped orchestrator, or pass {option} another folder",
                ) from None
            time.sleep(0.002)  # the other run holds it for milliseconds: look again
    try:
        yield
    finally:
        fcntl.flock(directory, fcntl.LOCK_UN)


def _lock_marker(folder: Path, option: str) -> IO[str]:
    """Open and lock the marker, creating it only in a new or empty folder (the caller holds
    the folder's flock: no other run of this version is checking or writing it)."""
    marker = folder / MARKER
    names = {entry.name for entry in folder.iterdir()}
    if MARKER not in names and names and not _earlier_evidence(folder, names):
        raise FolderNotOurs(
            f"the artifacts folder {folder} is not empty and holds no {MARKER} of an "
            "earlier run: refusing to empty it",
            f"pass {option} a new or empty folder (or empty this one yourself)",
        )
    try:
        handle = marker.open("a+", encoding="utf-8")
    except OSError as exc:
        raise _unwritable(folder, option, exc) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = describe_holder(handle.read())
        handle.close()
        raise FolderBusy(
            f"the artifacts folder {folder} is in use by {holder}",
            f"wait for that run to end, or pass {option} another folder",
        ) from None
    return handle


def _write_record(handle: IO[str], run_id: str) -> None:
    """Name the holder in the marker. A full disk must not stop the run: the lock is what
    counts, a refused run then reads an empty record."""
    record = {
        "run_id": run_id,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    data = json.dumps(record).encode()
    with contextlib.suppress(OSError):  # unbuffered: nothing is left to fail at close
        os.ftruncate(handle.fileno(), 0)
        os.pwrite(handle.fileno(), data, 0)


def _earlier_evidence(folder: Path, names: set[str]) -> bool:
    """An earlier version's pytest evidence folder: only its files, and its run.json."""
    if not names <= _EARLIER_EVIDENCE or layout.RUN_FILE not in names:
        return False
    try:
        run = json.loads((folder / layout.RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(run, dict) and {"run_id", "verdict"} <= run.keys()


def describe_holder(raw: str) -> str:
    try:
        holder = json.loads(raw)
        return (
            f"run {holder['run_id']} (pid {holder['pid']} on {holder['host']}, "
            f"started {holder['started_at']})"
        )
    except (ValueError, KeyError, TypeError):
        return "another run (it left no record: an earlier version of ci-stack, or a full disk)"


def _unwritable(folder: Path, option: str, exc: OSError) -> PrerequisiteMissing:
    return PrerequisiteMissing(
        f"cannot write the artifacts folder {folder} ({exc.strerror or exc})",
        f"pass {option} a writable folder",
    )
