"""Schema snapshots on the local provider: real embedded PostgreSQL, a real schema job.

A tiny app whose one job applies the `*.sql` files of a folder (its "migrations") and counts
its runs in a file; the schema key hashes that folder. Each test has its own snapshot store
(under /var/tmp, where the postgres user can read it), removed afterwards.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from orchestrator.embedded_postgres import INSTALL_CACHE_ROOT
from orchestrator.embedded_postgres.snapshot import DATA, MARKER
from orchestrator.errors import StackStartError
from orchestrator.log_harvest import LogHarvester
from orchestrator.providers.local import LocalProvider
from orchestrator.spec import (
    DatabaseSchema,
    DatabaseSpec,
    ExitProbe,
    ServiceSpec,
    StackSpec,
    new_run_id,
)
from orchestrator.stack import Stack
from tests.fixtures.stack_checks import quiet

pytestmark = pytest.mark.slow

APPLY = """\
import os, pathlib, sys
import psycopg

with open(os.environ["RUNS_FILE"], "a") as runs:
    runs.write("run\\n")
with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
    for script in sorted(pathlib.Path(sys.argv[1]).glob("*.sql")):
        conn.execute(script.read_text())
"""


@dataclass
class App:
    folder: Path
    store: Path

    @property
    def migrations(self) -> Path:
        return self.folder / "migrations"

    @property
    def runs(self) -> int:
        path = self.folder / "runs.txt"
        return len(path.read_text().splitlines()) if path.exists() else 0

    def spec(self) -> StackSpec:
        job = ServiceSpec(
            name="migrate",
            role="job",
            command=("{python}", str(self.folder / "apply.py"), str(self.migrations)),
            env={"DATABASE_URL": "{database_url}", "RUNS_FILE": str(self.folder / "runs.txt")},
            probe=ExitProbe(),
        )
        schema = DatabaseSchema.from_files(("migrate",), [self.migrations])
        return StackSpec(
            run_id=new_run_id(),
            app="snapshot-test",
            database=DatabaseSpec(name="app", schema=schema),
            services=(job,),
            timeout=60,
        )

    def run(self) -> tuple[dict[str, object], list[str]]:
        """Start and stop a stack; (database facts, tables seen while it ran)."""
        spec = self.spec()
        harvester = LogHarvester(self.folder / f"logs-{spec.run_id}", run_id=spec.run_id)
        provider = LocalProvider(snapshot_root=self.store)
        stack = Stack(spec, provider, harvester, progress=quiet)
        with stack, psycopg.connect(stack.database_url) as conn:
            rows = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
            ).fetchall()
        assert stack.state.database_facts is not None
        return stack.state.database_facts, [row[0] for row in rows]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    (tmp_path / "apply.py").write_text(APPLY)
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "001.sql").write_text("CREATE TABLE first (id int);")
    store = INSTALL_CACHE_ROOT / f"ci-stack-pgsnap-test-{secrets.token_hex(4)}"
    yield App(tmp_path, store)
    shutil.rmtree(store, ignore_errors=True)  # this test's own store


def snapshot_state(facts: dict[str, object]) -> str:
    return str(facts["snapshot"]).rsplit(": ", 1)[-1]


def test_a_changed_migration_makes_a_new_snapshot_and_an_unchanged_one_is_cloned(
    app: App,
) -> None:
    first, tables = app.run()
    assert (snapshot_state(first), app.runs, tables) == ("built now", 1, ["first"])

    again, tables = app.run()
    assert (snapshot_state(again), app.runs, tables) == ("reused", 1, ["first"])  # job skipped

    (app.migrations / "002.sql").write_text("CREATE TABLE second (id int);")
    changed, tables = app.run()
    assert (snapshot_state(changed), app.runs, tables) == ("built now", 2, ["first", "second"])
    assert changed["snapshot"] != first["snapshot"]  # a new name: the key changed


def test_two_concurrent_first_runs_both_succeed_and_build_once(app: App) -> None:
    results: list[tuple[dict[str, object], list[str]]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(app.run())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert errors == []
    assert [tables for _facts, tables in results] == [["first"], ["first"]]
    assert sorted(snapshot_state(facts) for facts, _ in results) == ["built now", "reused"]
    assert app.runs == 1


@pytest.mark.parametrize("damage", ["file removed", "marker removed", "staging left"])
def test_a_damaged_or_partial_snapshot_is_rebuilt(app: App, damage: str) -> None:
    facts, _ = app.run()
    name = str(facts["snapshot"]).split(":")[0]
    snapshot = app.store / name
    if damage == "file removed":
        (snapshot / DATA / "PG_VERSION").unlink()
    elif damage == "marker removed":
        (snapshot / MARKER).unlink()
    else:  # a killed build leaves its staging dir, and the final name half-made
        (app.store / f".{name}-killed").mkdir()
        (snapshot / MARKER).write_text("{")

    again, tables = app.run()

    assert snapshot_state(again) == "built now"
    assert (app.runs, tables) == (2, ["first"])
    assert not (app.store / f".{name}-killed").exists()
    assert (snapshot / MARKER).is_file()


def test_a_store_that_is_not_private_is_left_alone_and_the_jobs_run(app: App) -> None:
    app.store.mkdir(mode=0o777)
    os.chmod(app.store, 0o777)
    (app.store / "someone-elses-file").write_text("keep me")

    facts, tables = app.run()

    assert "not a private directory" in str(facts["snapshot_store"])
    assert "snapshot" not in facts
    assert (app.runs, tables) == (1, ["first"])
    assert (app.store / "someone-elses-file").read_text() == "keep me"
    assert stat.S_IMODE(app.store.stat().st_mode) == 0o777


def test_a_failing_schema_job_is_reported_by_the_stack_with_its_log(app: App) -> None:
    (app.migrations / "002.sql").write_text("THIS IS NOT SQL;")
    with pytest.raises(StackStartError) as caught:
        app.run()
    assert "migrate exited with code 1" in str(caught.value)
    assert "syntax error" in str(caught.value)
    snapshots = [p.name for p in app.store.glob("snapshot-test-*") if p.suffix != ".lock"]
    assert snapshots == []  # nothing half-built is left to be cloned
