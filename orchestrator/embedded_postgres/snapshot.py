"""Data-dir snapshots: a database whose schema is known by a key, built once, copied per run.

A snapshot is a cleanly stopped data dir in which the app's schema jobs (say, migrations)
already ran. It lives in a store per OS user, `/var/tmp/ci-stack-pgsnap-<uid>` (mode 0700,
owned by the user postgres runs as), under a name made of everything that decides its
content (the install, the superuser, the extensions, the app's schema key). Concurrent runs
are safe: a snapshot is built under a temp name and renamed into place while an exclusive
lock is held; readers copy it under a shared lock. A snapshot is complete only when its
marker lists exactly the files and bytes found; anything else under our name is rebuilt.
Other snapshots of the same family unused for `STALE_AFTER_DAYS` are removed after a build.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.embedded_postgres.binaries import INSTALL_CACHE_ROOT
from orchestrator.embedded_postgres.leftovers import TEMP_PREFIX
from orchestrator.embedded_postgres.run_as import RunAs
from orchestrator.errors import OrchestratorError

MARKER = "snapshot.json"  # written last: a dir without a matching one is incomplete
DATA = "data"
STALE_AFTER_DAYS = 7.0


def store_root(uid: int) -> Path:
    """The snapshot store of the OS user `uid`."""
    return INSTALL_CACHE_ROOT / f"{TEMP_PREFIX}pgsnap-{uid}"


class SnapshotStore:
    """The per-user store; `open()` refuses (None, why) one that is not provably ours."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def open(
        cls, run_as: RunAs | None, root: Path | None = None
    ) -> tuple[SnapshotStore | None, str]:
        uid = run_as.uid if run_as is not None else os.geteuid()
        root = root or store_root(uid)
        if not os.path.lexists(root):
            _create_private_dir(root, run_as)
        info = os.lstat(root)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid or info.st_mode & 0o077:
            return None, (
                f"{root} is not a private directory of uid {uid} (a link, another owner, or "
                "readable by others); snapshots are off. Fix: remove it"
            )
        return cls(root), f"store {root}"

    # -- reading ------------------------------------------------------------------------------

    def ensure(self, name: str, build: Callable[[Path], None]) -> bool:
        """Make the snapshot `name` complete: `build(data_dir)` fills it when it is missing or
        incomplete (once for concurrent callers). True when this call built it."""
        with self._lock(name, fcntl.LOCK_SH):
            if self._complete(name):
                return False
        return self._build(name, build)

    @contextlib.contextmanager
    def reading(self, name: str) -> Iterator[Path]:
        """The data dir of the complete snapshot `name`, safe from removal while held."""
        with self._lock(name, fcntl.LOCK_SH):
            if not self._complete(name):
                raise OrchestratorError(
                    f"the snapshot {self.root / name} is missing or incomplete. "
                    "Fix: run again (it is rebuilt)"
                )
            os.utime(self.root / name / MARKER)  # last use, for the stale sweep
            yield self.root / name / DATA

    def _complete(self, name: str) -> bool:
        folder = self.root / name
        try:
            marker = json.loads((folder / MARKER).read_text())
        except (OSError, ValueError):
            return False
        return bool(marker.get("name") == name and marker.get("content") == _content(folder / DATA))

    # -- building -----------------------------------------------------------------------------

    def _build(self, name: str, build: Callable[[Path], None]) -> bool:
        with self._lock(name, fcntl.LOCK_EX):
            if self._complete(name):
                return False  # a concurrent run built it while we waited
            # Holding the exclusive lock: whatever else carries this name is a dead attempt.
            self._remove(self.root / name)
            for dead in self.root.glob(f".{name}-*"):
                self._remove(dead)
            staging = Path(tempfile.mkdtemp(dir=self.root, prefix=f".{name}-"))
            try:
                os.chmod(staging, 0o700)
                build(staging / DATA)
                marker = {
                    "name": name,
                    "content": _content(staging / DATA),
                    "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "pid": os.getpid(),
                }
                (staging / MARKER).write_text(json.dumps(marker))
                os.rename(staging, self.root / name)  # atomic: readers see all or nothing
            finally:
                self._remove(staging)
        self.sweep(keep=name)
        return True

    def sweep(self, keep: str) -> list[str]:
        """Remove snapshots of `keep`'s family unused for STALE_AFTER_DAYS (skipping any
        that a run holds); return their names."""
        family = keep.rsplit("-", 1)[0]
        removed = []
        for folder in self.root.glob(f"{family}-*"):
            if folder.name == keep or not folder.is_dir() or folder.is_symlink():
                continue
            try:
                age = time.time() - (folder / MARKER).stat().st_mtime
            except OSError:
                continue  # no marker: possibly a build in progress under its lock
            if age < STALE_AFTER_DAYS * 86400:
                continue
            with (
                contextlib.suppress(BlockingIOError),
                self._lock(folder.name, fcntl.LOCK_EX | fcntl.LOCK_NB),
            ):
                self._remove(folder)
                removed.append(folder.name)
        return removed

    @contextlib.contextmanager
    def _lock(self, name: str, how: int) -> Iterator[None]:
        fd = os.open(self.root / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, how)
            yield
        finally:
            os.close(fd)  # releases the lock

    @staticmethod
    def _remove(path: Path) -> None:
        if path.is_symlink():
            path.unlink()
        elif path.exists():
            shutil.rmtree(path)


def _content(folder: Path) -> list[int] | None:
    """[file count, total bytes] under `folder`; None when it is missing."""
    if not folder.is_dir():
        return None
    count = size = 0
    for dirpath, _dirs, files in os.walk(folder):
        for file in files:
            count += 1
            size += os.lstat(os.path.join(dirpath, file)).st_size
    return [count, size]


def _create_private_dir(root: Path, run_as: RunAs | None) -> None:
    """Make `root` (0700, owned by `run_as`) appear whole: made and chowned under a temporary
    name, then renamed into place, so a concurrent opener never sees it still owned by us."""
    staging = root.with_name(f".{root.name}.{os.getpid()}.{threading.get_ident()}")
    os.mkdir(staging, 0o700)
    try:
        if run_as is not None:
            os.chown(staging, run_as.uid, run_as.gid)
        os.rename(staging, root)  # onto an empty one a concurrent opener made: the same thing
    except OSError:  # another opener's root is already in use: that one stands
        with contextlib.suppress(OSError):
            os.rmdir(staging)
