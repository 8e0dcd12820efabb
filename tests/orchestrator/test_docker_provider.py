"""The Stack on the docker provider: real images, containers, network; and `remove_labelled`.

One module-scoped run (`finished_run`) starts a docker stack, looks at it (HTTP and `docker
inspect`) while it runs, stops it and looks again; most tests read what it saw. Skipped with
the reason when no Docker daemon answers or the images can't be built here.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import requests

from backend.stack_profile import BackendProfile
from orchestrator import images
from orchestrator.config import OrchestratorConfig
from orchestrator.contract import RUN_LABEL
from orchestrator.errors import OrchestratorError, StackStartError
from orchestrator.log_harvest import LogHarvester
from orchestrator.prepare import resolve_images
from orchestrator.redaction import Redactor
from orchestrator.session import open_stack
from orchestrator.stack import Stack
from tests.fixtures.backend import DEMO_APP
from tests.fixtures.stack_checks import ObservedRun, files_containing, quiet

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]

SERVICE_LABEL = "ci-stack.service"
PGDATA = "/var/lib/postgresql/data"


def labelled(docker_api: Any, run_id: str) -> tuple[list[Any], list[Any]]:
    """(containers, networks) carrying the run label of `run_id`."""
    filters = {"label": f"{RUN_LABEL}={run_id}"}
    return (
        docker_api.containers.list(all=True, filters=filters),
        docker_api.networks.list(filters=filters),
    )


@pytest.fixture(scope="module")
def built(docker_api: Any) -> dict[str, images.ImageResult]:
    """The images the provider will use (built now, so the stack's timings are warm)."""
    try:
        return images.build_images(BackendProfile().images(), client=docker_api)
    except OrchestratorError as exc:
        pytest.skip(f"the stack's images can't be built here: {exc}")


# -- one full run, observed ----------------------------------------------------------------


@dataclass
class FinishedRun(ObservedRun):
    command: dict[str, Any]
    containers: dict[str, dict[str, Any]]  # service label -> docker inspect
    network: dict[str, Any]
    stack_json_when_ready: dict[str, Any]
    left_containers: list[str]
    left_networks: list[str]


def _wait_for_status(url: str, wanted: str, timeout: float) -> dict[str, Any]:
    deadline = time.perf_counter() + timeout
    body: dict[str, Any] = {}
    while time.perf_counter() < deadline:
        body = requests.get(url, timeout=5).json()
        if body.get("status") == wanted:
            return body
        time.sleep(0.2)
    pytest.fail(f"{url} did not reach {wanted} in {timeout}s; last answer: {body}")


@pytest.fixture(scope="module")
def schema_image(docker_api: Any, built: Any) -> str:
    """The database-with-schema image of the backend's current schema (made if missing), so
    the observed run starts from it whatever ran before."""
    from orchestrator.providers.docker import DockerProvider

    provider = DockerProvider()
    profile = BackendProfile()
    try:
        facts = provider.prepare(resolve_images(profile.spec(OrchestratorConfig()), profile).spec)
    finally:
        provider.close()
    assert facts["schema"]["status"] in ("built", "cached"), facts["schema"]
    return str(facts["schema"]["image"])


@pytest.fixture(scope="module")
def finished_run(
    docker_api: Any, built: Any, schema_image: str, tmp_path_factory: pytest.TempPathFactory
) -> FinishedRun:
    folder = tmp_path_factory.mktemp("docker-stack")
    password = secrets.token_urlsafe(18)
    config = OrchestratorConfig(app=DEMO_APP, provider="docker", artifacts=folder)
    with open_stack(config, password=password, progress=quiet) as run:
        run_id = run.run_id
        url = run.backend_url
        sent = requests.post(
            url + "/api/commands",
            json={"command_type": "TestCommand", "payload": {}, "behavior": {"type": "success"}},
            timeout=10,
        )
        assert sent.status_code == 201, sent.text
        command = _wait_for_status(
            f"{url}/api/commands/{sent.json()['command_id']}", "COMPLETED", 30
        )
        containers, networks = labelled(docker_api, run_id)
        assert len(networks) == 1
        network = networks[0]
        network.reload()
        seen = FinishedRun(
            folder=folder,
            password=password,
            run_id=run_id,
            environment=run.environment(),
            readyz=requests.get(url + "/api/health/readyz", timeout=10),
            workers=requests.get(url + "/api/workers", timeout=10).json()["workers"],
            command=command,
            containers={c.labels[SERVICE_LABEL]: c.attrs for c in containers},
            network=network.attrs,
            stack_json_when_ready=json.loads((folder / "stack.json").read_text()),
            left_containers=[],
            left_networks=[],
        )
    left_containers, left_networks = labelled(docker_api, run_id)
    seen.left_containers = [c.name for c in left_containers]
    seen.left_networks = [n.name for n in left_networks]
    return seen


def test_backend_answers_on_the_published_url(finished_run: FinishedRun) -> None:
    assert finished_run.readyz.status_code == 200, finished_run.readyz.text
    assert finished_run.environment["STACK_BACKEND_URL"].startswith("http://127.0.0.1:")
    assert finished_run.environment["STACK_PROVIDER"] == "docker"


def test_both_workers_are_live(finished_run: FinishedRun) -> None:
    assert {w["worker_id"] for w in finished_run.workers} == {
        f"worker-1-{finished_run.run_id}",
        f"worker-2-{finished_run.run_id}",
    }


def test_a_command_travels_through_pgmq_to_a_worker(finished_run: FinishedRun) -> None:
    assert finished_run.command["status"] == "COMPLETED"


def test_every_container_and_the_network_carry_the_run_label(finished_run: FinishedRun) -> None:
    run_id = finished_run.run_id
    # migrate did not run: the database started from the schema image
    assert set(finished_run.containers) == {"db", "backend", "worker-1", "worker-2"}
    for service, attrs in finished_run.containers.items():
        assert attrs["Config"]["Labels"][RUN_LABEL] == run_id, service
        assert attrs["Name"] == f"/ci-stack-{run_id}-{service}"
    assert finished_run.network["Name"] == f"ci-stack-{run_id}"
    assert finished_run.network["Labels"][RUN_LABEL] == run_id


def test_services_reach_each_other_by_alias_on_the_run_network(finished_run: FinishedRun) -> None:
    network = finished_run.network["Name"]
    for service, attrs in finished_run.containers.items():
        endpoint = attrs["NetworkSettings"]["Networks"][network]
        assert service in endpoint["Aliases"], service
        assert set(attrs["NetworkSettings"]["Networks"]) == {network}, service
    backend_env = finished_run.containers["backend"]["Config"]["Env"]
    database_urls = [e for e in backend_env if e.startswith("DATABASE_URL=")]
    assert len(database_urls) == 1
    assert "@db:5432/" in database_urls[0]


def test_ports_are_published_on_loopback_only(finished_run: FinishedRun) -> None:
    published = {}
    for service, attrs in finished_run.containers.items():
        for port, bindings in (attrs["HostConfig"]["PortBindings"] or {}).items():
            published[(service, port)] = {b["HostIp"] for b in bindings}
    assert published == {("db", "5432/tcp"): {"127.0.0.1"}, ("backend", "8000/tcp"): {"127.0.0.1"}}
    backend_ports = finished_run.containers["backend"]["NetworkSettings"]["Ports"]["8000/tcp"]
    assert [b["HostIp"] for b in backend_ports] == ["127.0.0.1"]
    host_port = backend_ports[0]["HostPort"]
    assert finished_run.environment["STACK_BACKEND_URL"] == f"http://127.0.0.1:{host_port}"


def test_pgdata_is_a_tmpfs(finished_run: FinishedRun) -> None:
    db = finished_run.containers["db"]
    assert PGDATA in (db["HostConfig"]["Tmpfs"] or {})
    assert f"PGDATA={PGDATA}" in db["Config"]["Env"]
    assert not [m for m in db["Mounts"] if m.get("Destination") == PGDATA and m["Type"] != "tmpfs"]


def test_stack_json_records_images_and_docker(
    finished_run: FinishedRun, built: dict[str, images.ImageResult]
) -> None:
    facts = finished_run.stack_json_when_ready
    prepare = facts["prepare"]
    assert prepare["docker"]["server_version"]
    assert prepare["docker"]["publish_ip"] == "127.0.0.1"
    for name, result in built.items():
        assert prepare["images"][name]["tag"] == result.tag
        assert prepare["images"][name]["image_id"] == result.image_id
        assert prepare["images"][name]["status"] in ("built", "cached")
    assert facts["services"]["backend"]["image"] == built["backend"].tag
    db_repository = built["postgres-pgmq"].tag.rpartition(":")[0]
    assert facts["database"]["image"] == prepare["schema"]["image"]
    assert facts["database"]["image"].startswith(f"{db_repository}-schema:")
    assert {"db ready", "migrate done", "backend ready", "2 worker ready", "total"} <= set(
        facts["timings"]
    )


def test_logs_of_every_service_are_followed(finished_run: FinishedRun) -> None:
    logs = finished_run.folder / "logs"
    # (no migrate.log: migrate did not run, the database was cloned with its schema)
    for name in ("db.log", "backend.log", "backend.jsonl", "worker-1.log"):
        assert (logs / name).is_file(), f"missing logs/{name}"
        assert (logs / name).stat().st_size > 0, f"logs/{name} is empty"
    assert "database system is ready to accept connections" in (logs / "db.log").read_text()
    assert f"worker-1-{finished_run.run_id}" in (logs / "worker-1.log").read_text()
    # Lines are whole: every line of a JSON-logging service parses.
    for line in (logs / "worker-1.log").read_text().splitlines():
        assert json.loads(line)["logger"], line


def test_the_database_starts_from_the_schema_image_and_migrate_does_not_run(
    finished_run: FinishedRun, schema_image: str
) -> None:
    facts = json.loads((finished_run.folder / "stack.json").read_text())
    assert facts["prepare"]["schema"]["status"] == "cached"
    assert facts["database"]["schema_image"] == schema_image
    assert "migrate" not in finished_run.containers  # no container ran it
    db_log = (finished_run.folder / "logs" / "db.log").read_text()
    assert f"{PGDATA} copied from /var/lib/postgresql/schema" in db_log  # no initdb, no migrate
    migrations = finished_run.readyz.json()["checks"]["migrations"]
    assert migrations["ok"] is True and not migrations["pending"]


def test_the_backend_starts_with_the_database_the_workers_once_it_is_ready(
    finished_run: FinishedRun,
) -> None:
    facts = json.loads((finished_run.folder / "stack.json").read_text())["services"]
    assert facts["backend"]["started_with_database"] is True  # it waits for it itself
    assert "started_with_database" not in facts["worker-1"]  # they need it up
    containers = finished_run.containers
    assert containers["db"]["State"]["StartedAt"] <= containers["backend"]["State"]["StartedAt"]


def test_the_database_is_killed_not_shut_down(finished_run: FinishedRun) -> None:
    db_log = (finished_run.folder / "logs" / "db.log").read_text()
    assert "database system is ready to accept connections" in db_log
    assert "received fast shutdown request" not in db_log
    assert "database system is shut down" not in db_log


@pytest.mark.usefixtures("built")
def test_the_schema_jobs_run_once_per_schema_key_then_their_result_is_cloned(
    docker_api: Any, tmp_path: Path
) -> None:
    import psycopg

    from orchestrator.providers.docker import DockerProvider
    from orchestrator.spec import DatabaseSchema

    profile = BackendProfile()
    spec = profile.spec(OrchestratorConfig(workers=1))
    schema = DatabaseSchema(key=f"test-{uuid.uuid4().hex}", jobs=("migrate",))
    spec = replace(spec, database=replace(spec.database, schema=schema))
    spec = resolve_images(spec, profile).spec
    made = DockerProvider()
    tag = None
    try:
        facts = made.prepare(spec)["schema"]
        assert facts["status"] == "built", facts
        tag = facts["image"]
        assert labelled(docker_api, spec.run_id)[0] == []  # the builder's containers are gone
        image = docker_api.images.get(tag)
        assert image.labels["ci-stack.schema-key"] == schema.key

        second = replace(spec, run_id=f"{spec.run_id}-2")
        harvester = LogHarvester(tmp_path / "logs", redact=Redactor(second.secrets))
        with Stack(second, DockerProvider(), harvester, progress=quiet) as stack:
            assert stack.state.facts["prepare"]["schema"]["status"] == "cached"
            jobs = docker_api.containers.list(
                all=True,
                filters={"label": [f"{RUN_LABEL}={second.run_id}", f"{SERVICE_LABEL}=migrate"]},
            )
            assert jobs == []  # migrate did not run: its result came with the database
            with psycopg.connect(stack.database_url, connect_timeout=5) as connection:
                head = connection.execute("SELECT version_num FROM alembic_version").fetchall()
                types = connection.execute("SELECT count(*) FROM command_type").fetchone()
            wrong = stack.database_url.replace(second.database.password, "not-the-password")
            with pytest.raises(psycopg.OperationalError, match="password authentication"):
                psycopg.connect(wrong, connect_timeout=5).close()
        assert len(head) == 1
        assert types is not None and types[0] > 0  # master data came with the schema
    finally:
        made.close()
        if tag is not None:
            docker_api.images.remove(tag, force=True)  # this test's own image (a unique key)


def test_the_password_never_reaches_the_artifacts(finished_run: FinishedRun) -> None:
    assert finished_run.password in finished_run.environment["STACK_DATABASE_URL"]
    assert files_containing(finished_run.folder, finished_run.password) == []


def test_nothing_of_the_run_remains_after_exit(finished_run: FinishedRun) -> None:
    assert finished_run.left_containers == []
    assert finished_run.left_networks == []
    facts = json.loads((finished_run.folder / "stack.json").read_text())
    assert "teardown" in facts["timings"]


# -- failures ------------------------------------------------------------------------------


@pytest.mark.usefixtures("built")
def test_failing_migrations_fail_fast_with_their_log_and_leave_nothing(
    docker_api: Any, tmp_path: Path
) -> None:
    from orchestrator.providers.docker import DockerProvider

    spec = BackendProfile().spec(OrchestratorConfig(workers=1))
    broken = ("{python}", "-m", "backend", "no-such-command")
    services = tuple(
        replace(s, command=broken) if s.name == "migrate" else s for s in spec.services
    )
    spec = resolve_images(replace(spec, services=services), BackendProfile()).spec
    harvester = LogHarvester(tmp_path / "logs", redact=Redactor(spec.secrets))
    stack = Stack(spec, DockerProvider(), harvester, progress=quiet)

    started = time.perf_counter()
    with pytest.raises(StackStartError) as caught, stack:
        pytest.fail("the stack started without migrations")

    error = caught.value
    assert (error.service, error.exit_code) == ("migrate", 2)
    assert "invalid choice: 'no-such-command'" in error.log_tail
    assert time.perf_counter() - started < 60
    assert labelled(docker_api, spec.run_id) == ([], [])
    assert (tmp_path / "logs" / "migrate.log").stat().st_size > 0


@pytest.mark.usefixtures("built")
def test_stopping_a_container_that_is_already_gone_is_quiet(
    docker_api: Any, tmp_path: Path
) -> None:
    from orchestrator.providers.docker import GONE, DockerProvider

    spec = resolve_images(
        BackendProfile().spec(OrchestratorConfig(workers=0)), BackendProfile()
    ).spec
    provider = DockerProvider()
    try:
        provider.prepare(spec)
        database = provider.start_database(spec)
        docker_api.containers.get(database.container_id).remove(force=True)  # "killed"

        assert database.exit_code() == GONE
        database.stop(timeout=5)  # no error
        assert database.log_tail(10) is None  # gone: the Stack falls back to the harvested copy
    finally:
        provider.close()
    assert labelled(docker_api, spec.run_id) == ([], [])


# -- remove_labelled -----------------------------------------------------------------------


def _leftover(docker_api: Any, image: str, run_id: str) -> tuple[Any, Any]:
    """A container on a network, both labelled like a run's, as a killed run leaves them."""
    labels = {RUN_LABEL: run_id}
    network = docker_api.networks.create(f"ci-stack-{run_id}", labels=labels)
    container = docker_api.containers.run(
        image,
        ["sleep", "300"],
        entrypoint=[],
        detach=True,
        labels={**labels, SERVICE_LABEL: "db"},
        name=f"ci-stack-{run_id}-db",
        network=network.name,
    )
    return container, network


def test_remove_labelled_removes_a_dead_run_and_keeps_the_others(
    docker_api: Any, built: dict[str, images.ImageResult]
) -> None:
    from orchestrator.providers.docker_resources import remove_labelled

    dead, alive = f"pytest-dead-{uuid.uuid4().hex[:8]}", f"pytest-alive-{uuid.uuid4().hex[:8]}"
    image = built["postgres-pgmq"].tag
    _leftover(docker_api, image, dead)
    _leftover(docker_api, image, alive)
    try:
        # Every run but `dead` counts as live: this daemon is shared, and a stack another
        # checkout starts meanwhile must not be touched (a snapshot of the runs present
        # would miss it).
        skipped: list[str] = []

        removed = remove_labelled(
            keep=lambda labels: None if labels.get(RUN_LABEL) == dead else "alive",
            skipped=skipped,
        )

        assert len(removed) == 2, removed
        container_line, network_line = sorted(removed)
        assert container_line.startswith(f"container ci-stack-{dead}-db (")
        assert network_line.startswith(f"network ci-stack-{dead} (")
        assert all(line.endswith(f", run {dead})") for line in removed)
        assert labelled(docker_api, dead) == ([], [])
        kept_containers, kept_networks = labelled(docker_api, alive)
        assert [c.name for c in kept_containers] == [f"ci-stack-{alive}-db"]
        assert [n.name for n in kept_networks] == [f"ci-stack-{alive}"]

        assert any(line.startswith(f"container ci-stack-{alive}-db") for line in skipped)
        assert len(remove_labelled(run_id=alive, keep=lambda _: "alive")) == 2  # run_id wins
        assert labelled(docker_api, alive) == ([], [])
        assert remove_labelled(run_id=alive) == []
    finally:
        remove_labelled(run_id=dead)
        remove_labelled(run_id=alive)


@pytest.mark.usefixtures("built")
def test_a_killed_db_container_is_named_and_teardown_is_quick(
    docker_api: Any, tmp_path: Path
) -> None:
    import sys

    from tests.fixtures.orchestrator_cli import CliProcess

    ready = tmp_path / "ready"
    wait_for_ready = (
        "import os, sys, time, pathlib; "
        "pathlib.Path(sys.argv[1]).write_text(os.environ['STACK_RUN_ID']); time.sleep(120)"
    )
    cli = CliProcess(
        "run", "--provider", "docker", "--workers", "1", "--artifacts", str(tmp_path / "a"),
        "--", sys.executable, "-c", wait_for_ready, str(ready),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert time.monotonic() < deadline, cli.stderr
            assert cli.process.poll() is None, cli.stderr
            time.sleep(0.1)
        run_id = ready.read_text()
        [db] = docker_api.containers.list(
            filters={"label": [f"{RUN_LABEL}={run_id}", f"{SERVICE_LABEL}=db"]}
        )
        db.kill()
        code = cli.wait(timeout=90)
    finally:
        cli.kill()

    assert code == 5, cli.stderr
    assert "ci-stack: db exited with 137 at " in cli.stderr
    assert "ignored its stop signal" not in cli.stderr  # already dead is not a stop timeout
    teardown = json.loads((tmp_path / "a" / "stack.json").read_text())["timings"]["teardown"]
    assert labelled(docker_api, run_id) == ([], [])
    assert teardown < 30
