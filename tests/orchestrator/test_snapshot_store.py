"""The schema-snapshot store's folder: concurrent first openers all get it (as root it is
made for the postgres user, and a half-made folder must never be seen as someone else's)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from orchestrator.embedded_postgres.run_as import RunAs
from orchestrator.embedded_postgres.snapshot import SnapshotStore


def _open_together(root: Path, run_as: RunAs | None, count: int) -> list[str | None]:
    """`count` threads open the store at once; each one's refusal (None: it got the store)."""
    barrier = threading.Barrier(count)
    refusals: list[str | None] = []

    def open_store() -> None:
        barrier.wait(timeout=10)
        store, why = SnapshotStore.open(run_as, root)
        refusals.append(None if store is not None else why)

    threads = [threading.Thread(target=open_store) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return refusals


def test_concurrent_first_opens_all_get_the_private_store(tmp_path: Path) -> None:
    run_as = RunAs.for_current_process()  # root: the postgres user; else None (ourselves)
    owner = run_as.uid if run_as is not None else os.geteuid()
    for attempt in range(20):
        root = tmp_path / f"store-{attempt}"
        assert _open_together(root, run_as, 4) == [None] * 4
        info = root.lstat()
        assert (info.st_uid, info.st_mode & 0o777) == (owner, 0o700)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging
