"""The Stack on the local provider: real embedded PostgreSQL, real backend and workers.

One module-scoped run (`finished_run`) starts a stack, looks at it while it runs, stops it
and looks again; most tests read what it saw. Failure cases start their own stacks. The
teardown bookkeeping is also checked with a fake Provider (no processes).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from backend.stack_profile import BackendProfile
from orchestrator.config import OrchestratorConfig
from orchestrator.contract import OWNER_ENV
from orchestrator.embedded_postgres import find_leftovers
from orchestrator.errors import StackStartError, StartAborted, TeardownErrors
from orchestrator.log_harvest import LogHarvester
from orchestrator.ownership import Owner
from orchestrator.proc import process_environment
from orchestrator.providers.base import LogLines, RunningDatabase
from orchestrator.providers.local import LocalProvider
from orchestrator.readiness import ProbeResult
from orchestrator.redaction import Redactor
from orchestrator.session import open_stack
from orchestrator.spec import DatabaseSpec, ExitProbe, ServiceSpec, StackSpec
from orchestrator.stack import Stack
from tests.fixtures.backend import DEMO_APP, REPO_ROOT, wait_until
from tests.fixtures.orchestrator_cli import ORCHESTRATOR, local_run_args
from tests.fixtures.stack_checks import (
    ObservedRun,
    accepts_connections,
    files_containing,
    live_pids_of_run,
    quiet,
)

# -- one full run, observed ----------------------------------------------------------------


@dataclass
class FinishedRun(ObservedRun):
    stack_json_when_ready: dict[str, Any]
    pids_while_running: list[int]
    pg_dir: Path
    pg_dir_existed: bool
    owner_while_running: set[str | None]
    progress: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> FinishedRun:
    folder = tmp_path_factory.mktemp("local-stack")
    password = secrets.token_urlsafe(18)
    progress: list[str] = []
    config = OrchestratorConfig(
        app=DEMO_APP, provider="local", artifacts=folder, workers=2, timeout=60
    )
    with open_stack(config, password=password, progress=progress.append) as run:
        stack = run.stack
        run_id = run.run_id
        # What a service printing its DSN, and a fact holding it, would leave behind.
        stack.harvester.add_stream_source("leaky", [f"connecting to {stack.database_url}\n"])
        run.artifacts.write_json("leaky.json", {"dsn": stack.database_url})
        assert stack.state.database is not None
        pg_dir = Path(stack.state.database.describe()["data_dir"]).parent
        seen = FinishedRun(
            folder=folder,
            password=password,
            run_id=run_id,
            environment=run.environment(),
            readyz=requests.get(run.backend_url + "/api/health/readyz", timeout=10),
            workers=requests.get(run.backend_url + "/api/workers", timeout=10).json()["workers"],
            stack_json_when_ready=json.loads((folder / "stack.json").read_text()),
            pids_while_running=live_pids_of_run(run_id),
            pg_dir=pg_dir,
            pg_dir_existed=pg_dir.is_dir(),
            owner_while_running={
                process_environment(pid).get(OWNER_ENV) for pid in live_pids_of_run(run_id)
            },
            progress=progress,
        )
    return seen


@pytest.mark.slow
def test_backend_is_ready_and_lists_both_workers(finished_run: FinishedRun) -> None:
    assert finished_run.readyz.status_code == 200, finished_run.readyz.text
    assert len(finished_run.workers) == 2
    assert {w["worker_id"] for w in finished_run.workers} == {
        f"worker-1-{finished_run.run_id}",
        f"worker-2-{finished_run.run_id}",
    }


@pytest.mark.slow
def test_environment_names_the_stack(finished_run: FinishedRun) -> None:
    env = finished_run.environment

    assert env["STACK_BACKEND_URL"].startswith("http://127.0.0.1:")
    assert env["STACK_DATABASE_URL"].startswith("postgresql://")
    assert finished_run.password in env["STACK_DATABASE_URL"]  # so the grep below means it
    assert env["STACK_RUN_ID"] == finished_run.run_id
    assert env["STACK_PROVIDER"] == "local"
    assert Path(env["STACK_ARTIFACTS_DIR"]) == finished_run.folder.resolve()


@pytest.mark.slow
def test_stack_json_records_what_ran(finished_run: FinishedRun) -> None:
    facts = finished_run.stack_json_when_ready

    assert facts["provider"] == "local"
    assert facts["app"] == "backend"
    assert facts["run_id"] == finished_run.run_id
    assert facts["config"]["workers"]["value"] == "2"
    assert {"db ready", "migrate done", "backend ready", "2 worker ready", "total"} <= set(
        facts["timings"]
    )
    assert all(seconds >= 0 for seconds in facts["timings"].values())
    assert facts["urls"]["backend"] == finished_run.environment["STACK_BACKEND_URL"]
    assert facts["services"]["backend"]["url"] == facts["urls"]["backend"]
    # migrate ran once into the schema snapshot; this run's database is a clone of it.
    assert set(facts["services"]) == {"backend", "worker-1", "worker-2"}
    assert facts["skipped"] == ["migrate: the database was cloned from its schema snapshot"]
    assert all(isinstance(s["pid"], int) for s in facts["services"].values())
    database = facts["database"]
    assert database["kind"] == "embedded"
    assert isinstance(database["port"], int)
    assert str(database["port"]) in finished_run.environment["STACK_DATABASE_URL"]
    assert database["version"].split(".")[0].isdigit()
    assert Path(database["bindir"], "postgres").exists()
    assert facts["prepare"]["python"] == sys.executable


@pytest.mark.slow
def test_stack_json_after_teardown_keeps_the_services_and_adds_the_teardown_time(
    finished_run: FinishedRun,
) -> None:
    facts = json.loads((finished_run.folder / "stack.json").read_text())

    assert "teardown" in facts["timings"]
    # migrate ran once into the schema snapshot; this run's database is a clone of it.
    assert set(facts["services"]) == {"backend", "worker-1", "worker-2"}
    assert facts["skipped"] == ["migrate: the database was cloned from its schema snapshot"]
    assert facts["database"]["port"] == finished_run.stack_json_when_ready["database"]["port"]


@pytest.mark.slow
def test_logs_of_every_service_are_harvested(finished_run: FinishedRun) -> None:
    logs = finished_run.folder / "logs"

    for name in ("backend.jsonl", "backend.log", "worker-1.log", "worker-2.log"):
        assert (logs / name).is_file(), f"missing logs/{name}"
    for name in ("backend.log", "worker-1.log", "worker-2.log"):
        assert (logs / name).stat().st_size > 0, f"logs/{name} is empty"
    assert not (logs / "migrate.log").exists()  # skipped: the database is a snapshot's clone
    assert f"worker-1-{finished_run.run_id}" in (logs / "worker-1.log").read_text()


@pytest.mark.slow
def test_progress_names_each_step(finished_run: FinishedRun) -> None:
    text = "\n".join(finished_run.progress)

    for step in ("provider local", "db ready", "migrate done", "backend ready", "teardown"):
        assert step in text


@pytest.mark.slow
def test_nothing_of_the_run_remains_after_exit(finished_run: FinishedRun) -> None:
    assert len(finished_run.pids_while_running) >= 3  # backend and two workers
    assert finished_run.pg_dir_existed
    # Every process of the run names its owner: this process, so `clean` keeps it while alive.
    assert finished_run.owner_while_running == {Owner.current().encode()}

    assert live_pids_of_run(finished_run.run_id) == []
    assert not finished_run.pg_dir.exists()
    assert find_leftovers(finished_run.run_id) == []
    assert not accepts_connections(finished_run.environment["STACK_BACKEND_URL"])
    assert not accepts_connections(finished_run.environment["STACK_DATABASE_URL"])


@pytest.mark.slow
def test_the_password_never_reaches_the_artifacts(finished_run: FinishedRun) -> None:
    folder = finished_run.folder
    assert (folder / "logs" / "leaky.log").read_text().startswith("connecting to postgresql://")

    assert files_containing(folder, finished_run.password) == []
    assert "***" in (folder / "logs" / "leaky.log").read_text()
    assert "***" in (folder / "leaky.json").read_text()


LEAKY_TEST = """
import os
from pathlib import Path

def test_prints_the_database_url():
    url = os.environ["STACK_DATABASE_URL"]
    Path(os.environ["DSN_FILE"]).write_text(url)
    print("database:", url)
    assert url == "something else", f"the database is {url}"
"""


@pytest.mark.slow
def test_the_password_never_reaches_the_artifacts_of_a_cli_run(tmp_path: Path) -> None:
    """A failing test that prints STACK_DATABASE_URL: junit.xml and test.json say it too."""
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "test_leaky.py").write_text(textwrap.dedent(LEAKY_TEST))
    folder, dsn_file = tmp_path / "artifacts", tmp_path / "dsn.txt"
    result = subprocess.run(
        [
            *ORCHESTRATOR,
            *local_run_args(
                folder,
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                str(tmp_path / "suite"),
            ),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "DSN_FILE": str(dsn_file)},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )

    assert result.returncode == 1, result.stderr
    password = urlsplit(dsn_file.read_text()).password
    assert password and len(password) >= 16
    assert password in result.stdout  # the command did print it
    assert (folder / "junit.xml").exists()
    assert list(folder.glob("tests/*/test.json")), "the failing test left no evidence"
    assert files_containing(folder, password) == []
    assert "the database is postgresql://postgres:***@" in (folder / "junit.xml").read_text()


# -- stacks that fail to start -------------------------------------------------------------


def backend_spec(workers: int = 1, timeout: float = 60) -> StackSpec:
    return BackendProfile().spec(OrchestratorConfig(workers=workers, timeout=timeout))


def local_stack(spec: StackSpec, folder: Path) -> Stack:
    """A Stack on the local provider for a hand-made spec (open_stack builds its own)."""
    redactor = Redactor(spec.secrets)
    harvester = LogHarvester(folder / "logs", redact=redactor, run_id=spec.run_id)
    return Stack(spec, LocalProvider(), harvester, progress=quiet)


def with_service(spec: StackSpec, name: str, **changes: Any) -> StackSpec:
    services = tuple(replace(s, **changes) if s.name == name else s for s in spec.services)
    return replace(spec, services=services)


def assert_cleaned_up(spec: StackSpec, stack: Stack) -> None:
    """Nothing of the run is left, and the stack still knows what ran."""
    assert live_pids_of_run(spec.run_id) == []
    assert find_leftovers(spec.run_id) == []
    assert "teardown" in stack.state.timings


@pytest.mark.slow
def test_failing_migrations_name_the_step_its_exit_code_and_its_log(tmp_path: Path) -> None:
    migrate = ("{python}", "-m", "backend", "no-such-command")
    spec = with_service(backend_spec(), "migrate", command=migrate)
    stack = local_stack(spec, tmp_path)

    with pytest.raises(StackStartError) as caught, stack:
        pytest.fail("the stack started without migrations")

    error = caught.value
    assert (error.service, error.exit_code) == ("migrate", 2)
    assert "invalid choice: 'no-such-command'" in error.log_tail
    assert str(error).startswith("migrate exited with code 2 while waiting for exit code 0")
    assert "--- last lines of migrate's log ---" in str(error)
    assert_cleaned_up(spec, stack)
    assert "db ready" in stack.state.timings
    assert (tmp_path / "logs" / "migrate.log").is_file()


@pytest.mark.slow
def test_a_backend_that_never_gets_ready_times_out_with_a_diagnosis(tmp_path: Path) -> None:
    # `migrate --help` exits 0 without migrating: the backend serves but is never ready.
    # 5 s: long enough for a busy machine to get the backend listening and logging.
    migrate = ("{python}", "-m", "backend", "migrate", "--help")
    spec = with_service(backend_spec(timeout=5), "migrate", command=migrate)
    stack = local_stack(spec, tmp_path)

    with pytest.raises(StackStartError) as caught, stack:
        pytest.fail("the stack started without migrations")

    error = caught.value
    assert error.service == "backend"
    assert error.exit_code is None
    assert "GET /api/health/readyz" in error.awaited
    assert "timed out after 5s" in error.awaited
    assert error.last_answer.startswith("HTTP 503")
    assert '"migrations"' in error.last_answer  # the probe's answer says what is missing
    assert "Serving on http://127.0.0.1:" in error.log_tail
    assert "--- last lines of backend's log ---" in str(error)
    assert_cleaned_up(spec, stack)


@pytest.mark.slow
def test_a_backend_that_exits_fails_the_wait_at_once(tmp_path: Path) -> None:
    spec = backend_spec()
    spec = with_service(spec, "backend", env={**spec.service("backend").env, "FLASK_ENV": "bogus"})

    stack = local_stack(spec, tmp_path)
    with pytest.raises(StackStartError) as caught, stack:
        pytest.fail("the stack started with a broken backend")

    error = caught.value
    assert (error.service, error.exit_code) == ("backend", 2)
    assert "FLASK_ENV='bogus'" in error.log_tail
    assert "timed out" not in error.awaited
    assert stack.state.timings.get("backend ready") is None
    assert_cleaned_up(spec, stack)


@pytest.mark.slow
def test_a_killed_backend_fails_the_next_command_and_teardown_still_completes(
    tmp_path: Path,
) -> None:
    config = OrchestratorConfig(app=DEMO_APP, provider="local", artifacts=tmp_path, workers=1)
    with open_stack(config, progress=quiet) as run:
        run_id, env = run.run_id, run.environment()
        backend = run.stack.state.services["backend"]
        os.kill(backend.describe()["pid"], signal.SIGKILL)
        wait_until(lambda: backend.exit_code() is not None, 10, message="the backend to die")
        probe = "import os, requests; requests.get(os.environ['STACK_BACKEND_URL'], timeout=5)"
        command = subprocess.run(
            [sys.executable, "-c", probe],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert command.returncode != 0
        assert "ConnectionError" in command.stderr
        [gone] = run.stack.exited_services()
        assert (gone.name, gone.exit_code) == ("backend", -signal.SIGKILL)

    assert live_pids_of_run(run_id) == []
    assert find_leftovers(run_id) == []
    facts = json.loads((tmp_path / "stack.json").read_text())
    assert "teardown" in facts["timings"]
    assert (tmp_path / "logs" / "backend.log").is_file()


# -- teardown bookkeeping, with a fake provider --------------------------------------------


class FakeService:
    def __init__(self, name: str, calls: list[str], fail: bool, code: int | None) -> None:
        self.name = name
        self.url: str | None = None
        self._calls, self._fail, self._code = calls, fail, code

    def exit_code(self) -> int | None:
        return self._code

    def logs(self) -> LogLines | None:
        return [f"last line of {self.name}"]

    def log_tail(self, lines: int) -> str | None:
        return f"last line of {self.name}"

    def stop(self, timeout: float) -> None:
        self._calls.append(f"stop {self.name}")
        if self._fail:
            raise RuntimeError(f"{self.name} would not stop")

    def describe(self) -> dict[str, Any]:
        return {"fake": True}


class FakeDatabase(FakeService):
    host_url = service_url = "postgresql://fake/db"
    schema_ready = False  # a fresh database: the schema jobs run


class FakeProvider:
    """Records calls; `failing` names the parts whose stop/close raise."""

    name = "fake"

    def __init__(self, failing: frozenset[str] = frozenset(), migrate_code: int = 0) -> None:
        self.calls: list[str] = []
        self.failing = failing
        self.migrate_code = migrate_code

    def prepare(self, spec: StackSpec) -> dict[str, Any]:
        self.calls.append("prepare")
        return {}

    def start_database(self, spec: StackSpec) -> FakeDatabase:
        self.calls.append("start db")
        return FakeDatabase("db", self.calls, "db" in self.failing, None)

    def start_service(
        self, spec: StackSpec, service: ServiceSpec, instance: str, database: RunningDatabase
    ) -> FakeService:
        self.calls.append(f"start {instance}")
        code = self.migrate_code if service.name == "migrate" else None
        running = FakeService(instance, self.calls, instance in self.failing, code)
        running.url = "http://fake.invalid" if service.port else None
        return running

    def close(self) -> None:
        self.calls.append("close")
        if "provider" in self.failing:
            raise RuntimeError("provider would not close")


def always_ready(*_args: Any) -> Any:
    return lambda: ProbeResult(True, "fake: ready")


@pytest.fixture
def fake_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    # No real database or HTTP behind the fakes: every probe answers ready.
    monkeypatch.setattr("orchestrator.stack.postgres_ready", always_ready)
    monkeypatch.setattr("orchestrator.stack.http_ready", always_ready)

    def make(provider: FakeProvider) -> Stack:
        harvester = LogHarvester(tmp_path / "logs")
        spec = backend_spec(workers=2)
        return Stack(spec, provider, harvester, progress=quiet)

    yield make


def test_teardown_runs_every_step_in_reverse_order_and_collects_the_errors(
    fake_stack: Any,
) -> None:
    provider = FakeProvider(failing=frozenset({"backend", "worker-1", "db", "provider"}))
    stack: Stack = fake_stack(provider)
    stack.state.database = provider.start_database(stack.spec)
    for service in stack.spec.services:
        for instance in service.instances():
            running = provider.start_service(stack.spec, service, instance, stack.state.database)
            stack.state.services[instance] = running
    provider.calls.clear()

    with pytest.raises(TeardownErrors) as caught:
        stack.stop()

    assert sorted(caught.value.errors) == [
        "backend: backend would not stop",
        "db: db would not stop",
        "provider: provider would not close",
        "worker-1: worker-1 would not stop",
    ]
    calls = provider.calls
    assert sorted(calls[:2]) == ["stop worker-1", "stop worker-2"]  # workers drain together
    assert sorted(calls[2:4]) == ["stop backend", "stop migrate"]
    assert calls[4:] == ["stop db", "close"]
    assert stack.state.services == {} and stack.state.database is None
    assert "teardown" in stack.state.timings


def test_a_failed_start_stops_what_was_started(fake_stack: Any) -> None:
    provider = FakeProvider(migrate_code=1)

    with pytest.raises(StackStartError) as caught, fake_stack(provider):
        pytest.fail("started although migrate failed")

    # The backend boots alongside migrations (unless migrate failed first); what started is
    # stopped, then the db, then the provider.
    calls = provider.calls
    assert calls[:2] == ["prepare", "start db"]
    assert "start migrate" in calls
    assert "start worker-1" not in calls  # workers wait for migrations
    started = {call.split()[1] for call in calls[2:] if call.startswith("start ")}
    stopped = {call.split()[1] for call in calls[2:-2] if call.startswith("stop ")}
    assert stopped == started
    assert calls[-2:] == ["stop db", "close"]
    assert (caught.value.service, caught.value.exit_code) == ("migrate", 1)
    assert caught.value.log_tail == "last line of migrate"


class QuotingProvider(FakeProvider):
    """Its migrate job fails with a log whose words are those of an aborted sibling."""

    def start_service(
        self, spec: StackSpec, service: ServiceSpec, instance: str, database: RunningDatabase
    ) -> FakeService:
        running = super().start_service(spec, service, instance, database)
        if service.name == "migrate":
            running.log_tail = lambda lines: "start aborted: words of the app's own log"  # type: ignore[method-assign]
        return running


def test_the_first_real_failure_is_told_from_aborted_siblings_by_its_type(
    fake_stack: Any, tmp_path: Path
) -> None:
    """A sibling that gave up raises StartAborted; the cause is raised, whatever its text
    (here its log quotes the words an aborted sibling's error has)."""
    fake_stack(FakeProvider())  # the fixture's probes: every one answers ready
    job = ("{python}", "-c", "pass")
    spec = StackSpec(
        run_id="aborted",
        app="fake",
        database=DatabaseSpec(),
        services=(  # the waiter comes first: its abort is the first error collected
            ServiceSpec("waiter", "job", job, ExitProbe(), depends_on=("migrate",)),
            ServiceSpec("migrate", "job", job, ExitProbe()),
        ),
    )
    stack = Stack(spec, QuotingProvider(migrate_code=1), LogHarvester(tmp_path), progress=quiet)

    with pytest.raises(StackStartError) as caught, stack:
        pytest.fail("started although migrate failed")

    assert not isinstance(caught.value, StartAborted)
    assert (caught.value.service, caught.value.exit_code) == ("migrate", 1)
    assert "start aborted: words of the app's own log" in str(caught.value)


def test_a_failed_start_keeps_its_error_when_the_teardown_fails_too(fake_stack: Any) -> None:
    provider = FakeProvider(failing=frozenset({"db"}), migrate_code=1)

    with pytest.raises(StackStartError) as caught, fake_stack(provider):
        pytest.fail("started although migrate failed")

    assert caught.value.__notes__ == [
        "while stopping the half-started stack: teardown failed: db: db would not stop"
    ]
    assert provider.calls[-2:] == ["stop db", "close"]


def test_dependents_start_only_after_their_dependencies_are_ready(fake_stack: Any) -> None:
    provider = FakeProvider()

    with fake_stack(provider) as stack:
        started = list(provider.calls)

    assert started.index("start worker-1") > started.index("start migrate")
    assert set(stack.state.timings) >= {
        "db ready",
        "migrate done",
        "backend ready",
        "2 worker ready",
        "total",
        "teardown",
    }
