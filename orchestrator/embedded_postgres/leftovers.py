"""Server temp dirs: where they go, how they are named, and cleaning up what killed runs left.

Each server lives in a temp dir named `ci-stack-<run id>-pg-*` under /dev/shm when it is
roomy, else the temp dir. An owner file in it says which process made it, so leftovers of
dead runs can be told from the dirs of live sessions. These roots are shared by every user of
the machine: only dirs owned by us (or, as root, by the user our servers run as) are ever
looked into or removed; another user's dirs, live or not, are theirs to clean.
"""

from __future__ import annotations

import ctypes
import glob
import json
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

from orchestrator.embedded_postgres.processes import kill_server
from orchestrator.embedded_postgres.run_as import RunAs
from orchestrator.errors import PrerequisiteMissing, TeardownErrors
from orchestrator.proc import ProcessInfo

TMPFS_DIR = Path("/dev/shm")
_TMPFS_MIN_FREE = 1 << 30  # only use /dev/shm when it is roomy (Docker's default is 64 MB)
TEMP_PREFIX = "ci-stack-"
OWNER_FILE = "ci-stack-owner.json"
_IPC_RMID = 0


def temp_prefix(run_id: str) -> str:
    """Name prefix of the temp dirs of run `run_id`."""
    return f"{TEMP_PREFIX}{run_id}-pg-"


def default_base_dir(base_dir: Path | None = None) -> Path:
    """Where server temp dirs go: `base_dir` (the `pg_tmpdir` setting), else a roomy
    /dev/shm, else the temp dir.

    A data dir in RAM starts several times faster than on a slow VM disk (initdb writes
    ~40 MB), and a throwaway database loses nothing by living there.
    """
    if base_dir is not None:
        return base_dir
    if _roomy_dir(TMPFS_DIR):
        return TMPFS_DIR
    return Path(tempfile.gettempdir())


def _roomy_dir(path: Path) -> bool:
    try:
        stats = os.statvfs(path)
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK) and stats.f_bavail * stats.f_frsize >= _TMPFS_MIN_FREE


def _temp_roots(base_dir: Path | None) -> list[Path]:
    """Every place a server temp dir may be, for leftover hunting."""
    roots = [default_base_dir(base_dir), TMPFS_DIR, Path(tempfile.gettempdir())]
    return [root for index, root in enumerate(roots) if root.is_dir() and root not in roots[:index]]


def write_owner_file(tmp: Path, run_id: str) -> None:
    me = ProcessInfo.of(os.getpid())
    owner = {"run_id": run_id, "pid": os.getpid(), "start_ticks": me.start_ticks if me else None}
    (tmp / OWNER_FILE).write_text(json.dumps(owner))


def _owner_alive(tmp: Path) -> bool:
    """True when the process that made `tmp` still runs (same pid and start time)."""
    try:
        owner = json.loads((tmp / OWNER_FILE).read_text())
    except FileNotFoundError:
        # Written right after mkdtemp: a very young dir without it is still being set up.
        return time.time() - tmp.stat().st_mtime < 60
    except (OSError, ValueError):
        return False
    info = ProcessInfo.of(int(owner["pid"]))
    return info is not None and info.state != "Z" and info.start_ticks == owner["start_ticks"]


def our_uids() -> frozenset[int]:
    """The owners a dir of ours can have: us, and as root also the user servers run as."""
    uids = {os.geteuid()}
    try:
        run_as = RunAs.for_current_process()
    except PrerequisiteMissing:
        run_as = None  # no server can have run as anyone else
    if run_as is not None:
        uids.add(run_as.uid)
    return frozenset(uids)


def owned_privately(path: Path, uids: frozenset[int]) -> bool:
    """True when `path` is a dir (not a symlink) owned by one of `uids`, writable by no one else."""
    try:
        info = path.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid in uids and not info.st_mode & 0o022


def require_owned(path: Path, uid: int, what: str) -> Path:
    """`path`, after checking that a cache dir under a shared root is `uid`'s alone.

    Its name is predictable, so another user could have made it first; a server must never
    start from files someone else can change.
    """
    if not owned_privately(path, frozenset({uid})):
        info = path.lstat()
        raise PrerequisiteMissing(
            f"the {what} {path} is not private to uid {uid} "
            f"(owner uid {info.st_uid}, mode {stat.filemode(info.st_mode)})",
            f"remove it (another user or program made it): rm -rf {path}",
        )
    return path


def find_leftovers(run_id: str | None = None, base_dir: Path | None = None) -> list[Path]:
    """Our server temp dirs in the temp roots (`base_dir`, /dev/shm, the temp dir).

    With `run_id`: every dir of that run (the caller says the run is over). Without: the
    dirs of any run whose owning process is gone, so a concurrent session is left alone.
    """
    pattern = glob.escape(temp_prefix(run_id)) + "*" if run_id else f"{TEMP_PREFIX}*-pg-*"
    uids = our_uids()
    found = [
        p for root in _temp_roots(base_dir) for p in root.glob(pattern) if owned_privately(p, uids)
    ]
    if run_id is None:
        found = [p for p in found if not _owner_alive(p)]
    return sorted(found)


def clean_leftovers(run_id: str | None = None, base_dir: Path | None = None) -> list[str]:
    """Kill the postmasters still running in leftover dirs, remove the dirs; say what went."""
    removed: list[str] = []
    errors: list[str] = []
    for tmp in find_leftovers(run_id, base_dir):
        killed = kill_server(tmp / "data", timeout=10.0)
        release_shared_memory(tmp / "data")
        try:
            shutil.rmtree(tmp)
        except FileNotFoundError:
            continue
        except OSError as exc:
            errors.append(f"{tmp}: {exc}")
            continue
        note = f" (killed postgres pids {', '.join(map(str, killed))})" if killed else ""
        removed.append(f"removed {tmp}{note}")
    if errors:
        raise TeardownErrors(errors)
    return removed


def release_shared_memory(data_dir: Path) -> bool:
    """Remove the SysV segment a killed postmaster left, once nothing is attached to it.

    postmaster.pid (gone after a clean shutdown) records the segment's key and id on line 7.
    """
    try:
        key, shmid = map(int, (data_dir / "postmaster.pid").read_text().splitlines()[6].split())
        rows = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    except (OSError, ValueError, IndexError):
        return False
    for row in rows:
        fields = row.split()  # key shmid perms size cpid lpid nattch ...
        if (int(fields[0]), int(fields[1]), int(fields[6])) == (key, shmid, 0):
            libc = ctypes.CDLL(None, use_errno=True)
            return bool(libc.shmctl(ctypes.c_int(shmid), ctypes.c_int(_IPC_RMID), None) == 0)
    return False
