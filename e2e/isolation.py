"""Parallel e2e runs on one stack: tests that change global state never overlap any other test.

Most tests only touch data they create (their own commands, their own command types), so
pytest-xdist workers run them side by side. A few change what every test sees (the stored
worker/retry config: max_attempts of every command sent meanwhile). Those request
`exclusive_stack`; every other test holds `shared_stack` (autouse). Both are one reader-writer
lock per stack, shared by all pytest processes of one user on the machine through `fcntl.flock`:

- shared: many at once; exclusive: alone, after the running shared holders finish;
- a waiting exclusive holder keeps a "gate" lock, so new shared holders queue behind it
  instead of starving it.

Test modules import `shared_stack_fixture` so that it applies to their tests (an imported
fixture is a module's fixture; the `_fixture` names keep parameters from shadowing it), and
mark exclusive tests `@pytest.mark.xdist_group("global-state")` so `--dist loadgroup` runs
them on one worker, one after the other, instead of having several workers wait for each other.

The lock files live in a folder of the user's own (`ci-stack-e2e-locks-<uid>` in the temp dir,
mode 0700): another user's runs on the same machine have their own stacks, and a folder one
user made is never one another user must write into.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

import pytest

LOCK_DIR_PREFIX = "ci-stack-e2e-locks-"
LOCK_WAIT_S = 600.0  # longest wait for the lock: more than the slowest test of the suite
POLL_S = 0.05
GLOBAL_STATE_GROUP = "global-state"


class StackLockTimeout(RuntimeError):
    """Another test held the stack's lock for longer than LOCK_WAIT_S."""


class LockDirNotOurs(RuntimeError):
    """The lock folder exists but is not this user's private folder."""


def default_lock_dir() -> Path:
    """This user's lock folder in the temp dir: `ci-stack-e2e-locks-<uid>`."""
    return Path(tempfile.gettempdir()) / f"{LOCK_DIR_PREFIX}{os.getuid()}"


def private_dir(directory: Path) -> Path:
    """`directory`, made 0700 if missing; refused unless it is ours and only ours to write."""
    with suppress(FileExistsError):
        directory.mkdir(mode=0o700, parents=True)
    info = directory.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise LockDirNotOurs(
            f"the e2e lock folder {directory} is not a folder only uid {os.getuid()} can write "
            f"(owner uid {info.st_uid}, mode {stat.filemode(info.st_mode)}). "
            "Fix: remove it (another user or program made it), or set TMPDIR to a folder of yours"
        )
    return directory


class StackLock:
    """Reader-writer lock for the tests of one stack, keyed by its backend URL."""

    def __init__(self, backend_url: str, directory: Path | None = None) -> None:
        digest = hashlib.sha256(backend_url.encode()).hexdigest()[:16]
        directory = private_dir(directory or default_lock_dir())
        self.gate_path = directory / f"{digest}.gate"
        self.rw_path = directory / f"{digest}.rw"

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Held by ordinary tests: any number at once, never during an exclusive holder."""
        with self._locked(self.gate_path, fcntl.LOCK_EX):
            rw = self._acquire(self.rw_path, fcntl.LOCK_SH)
        try:
            yield
        finally:
            self._release(rw)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Held by tests that change global state: alone on the stack."""
        with self._locked(self.gate_path, fcntl.LOCK_EX), self._locked(self.rw_path, fcntl.LOCK_EX):
            yield

    @contextmanager
    def _locked(self, path: Path, mode: int) -> Iterator[None]:
        handle = self._acquire(path, mode)
        try:
            yield
        finally:
            self._release(handle)

    def _acquire(self, path: Path, mode: int) -> IO[bytes]:
        handle = path.open("ab")
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(handle.fileno(), mode | fcntl.LOCK_NB)
                return handle
            except BlockingIOError:
                if time.monotonic() > deadline:
                    handle.close()
                    raise StackLockTimeout(
                        f"waited {LOCK_WAIT_S:.0f} s for {path} (pid {os.getpid()}): a test that "
                        "changes global state, or the ones running beside it, did not finish. "
                        "Fix: look for a hung test in the other xdist workers' output."
                    ) from None
                time.sleep(POLL_S)  # flock has no timeout of its own; poll until the deadline

    @staticmethod
    def _release(handle: IO[bytes]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()


@functools.cache
def lock_for(backend_url: str) -> StackLock:
    """One lock object per stack and process."""
    return StackLock(backend_url)


# The fixtures depend only on `backend_url` (the orchestrator plugin's, visible everywhere),
# so a module that imports them needs nothing else from here.
@pytest.fixture(name="shared_stack", autouse=True)
def shared_stack_fixture(request: pytest.FixtureRequest, backend_url: str) -> Iterator[None]:
    """Every test shares the stack, unless it asked for it alone (`exclusive_stack`)."""
    if "exclusive_stack" in request.fixturenames:
        yield
        return
    with lock_for(backend_url).shared():
        yield


@pytest.fixture(name="exclusive_stack")
def exclusive_stack_fixture(backend_url: str) -> Iterator[None]:
    """This test changes what every other test sees: no other test runs meanwhile."""
    with lock_for(backend_url).exclusive():
        yield
