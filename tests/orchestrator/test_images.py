"""Tests of orchestrator/images.py: the inputs hash (no Docker), then real builds and runs."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import images
from orchestrator.contract import RUN_LABEL
from orchestrator.errors import PrerequisiteMissing
from orchestrator.pgmq_extension import bundled_pgmq_version

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_LABELS = {RUN_LABEL: f"pytest-images-{uuid.uuid4().hex[:8]}"}  # `clean` finds leftovers


# --- the inputs hash and the contexts: no Docker needed ------------------------------------


def _hash(files, base="sha256:base", args=None):
    return images.image_inputs_hash(
        files, base_image_id=base, buildargs=args or {"BASE_IMAGE": "x"}
    )


def test_same_inputs_give_the_same_hash(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    as_path = {"Dockerfile": tmp_path / "Dockerfile", "a.sh": b"echo a\n"}
    as_bytes = {"a.sh": b"echo a\n", "Dockerfile": b"FROM x\n"}
    assert _hash(as_path) == _hash(as_bytes)  # content counts, not how it is given


def test_changing_an_input_file_changes_the_hash(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM x\nRUN true\n")
    files = {"Dockerfile": dockerfile, "pgmq/pgmq.control": b"default_version = '1.0'\n"}
    before = _hash(files)

    dockerfile.write_text("FROM x\nRUN false\n")
    assert _hash(files) != before
    dockerfile.write_text("FROM x\nRUN true\n")
    assert _hash(files) == before
    assert _hash({**files, "pgmq/pgmq.control": b"default_version = '1.1'\n"}) != before
    assert _hash({**files, "extra.txt": b""}) != before


def test_renaming_a_file_changes_the_hash() -> None:
    assert _hash({"a.sql": b"x"}) != _hash({"b.sql": b"x"})


def test_base_image_and_build_args_change_the_hash() -> None:
    files = {"Dockerfile": b"FROM x\n"}
    reference = _hash(files)
    assert _hash(files, base="sha256:other") != reference
    assert _hash(files, args={"BASE_IMAGE": "y"}) != reference
    assert _hash(files, args={"BASE_IMAGE": "x", "PG_APT_MAJOR": "16"}) != reference


def test_tag_is_repository_and_hash_prefix() -> None:
    digest = _hash({"Dockerfile": b"FROM x\n"})
    assert images.image_tag("backend", digest) == f"ci-stack/backend:{digest[:16]}"


def test_project_sources_skip_caches_and_bytecode(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\nreadme = "README.md"\n'
        '[tool.setuptools.packages.find]\ninclude = ["pkg*"]\n'
    )
    (tmp_path / "README.md").write_text("demo\n")
    for name in ("pkg/__init__.py", "pkg/sub/data.json", "pkg/__pycache__/m.cpython-311.pyc"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / "other.py").write_text("not packaged")

    assert sorted(images.project_source_files(tmp_path)) == [
        "README.md",
        "pkg/__init__.py",
        "pkg/sub/data.json",
        "pyproject.toml",
    ]


def test_postgres_context_carries_the_bundled_pgmq_files() -> None:
    context = images.build_context("postgres-pgmq", repo_root=REPO_ROOT)
    version = bundled_pgmq_version()
    assert {"Dockerfile", "pgmq-entrypoint.sh", "pgmq/pgmq.control"} <= set(context.files)
    assert f"pgmq/pgmq--{version}.sql" in context.files
    assert context.default_base == "postgres:16-bookworm"


# --- Docker: bootstrap, build, run -----------------------------------------------------------


@pytest.fixture(scope="module")
def docker_api() -> Iterator[object]:
    try:
        client = images.docker_client(timeout=900)
    except PrerequisiteMissing as exc:
        pytest.skip(str(exc))
    yield client
    client.close()


def _can_bootstrap() -> bool:
    return shutil.which("debootstrap") is not None and os.geteuid() == 0


@pytest.fixture(scope="module")
def snapshot_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the build inputs, so edits made to the checkout meanwhile don't move tags."""
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(
        REPO_ROOT / "images", root / "images", ignore=shutil.ignore_patterns("wheels", "pgmq")
    )
    for relative, source in images.project_source_files(REPO_ROOT).items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, root / relative)
    return root


@pytest.fixture(scope="module")
def built(docker_api, snapshot_root: Path) -> dict[images.ImageName, images.ImageResult]:
    try:
        for name in images.IMAGE_NAMES:
            images.resolve_base_image(docker_api, name, repo_root=snapshot_root)
    except PrerequisiteMissing as exc:
        if not _can_bootstrap():
            pytest.skip(f"no base image and no way to bootstrap one here: {exc}")
        images.bootstrap_base_image(client=docker_api)
    return images.build_images(repo_root=snapshot_root, client=docker_api)


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_bootstrap_is_idempotent(docker_api) -> None:
    if not docker_api.images.list(name=images.BASE_TAG) and not _can_bootstrap():
        pytest.skip("needs root and debootstrap (apt-get install debootstrap)")
    first = images.bootstrap_base_image(client=docker_api)
    second = images.bootstrap_base_image(client=docker_api)

    assert second.status == "cached"
    assert second.image_id == first.image_id
    assert second.tag == images.BASE_TAG
    assert second.seconds < 2.0


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_second_build_is_cached_under_the_same_tag(docker_api, snapshot_root, built) -> None:
    started = time.monotonic()
    again = images.build_images(repo_root=snapshot_root, client=docker_api)

    for name, first in built.items():
        second = again[name]
        assert second.status == "cached", name
        assert (second.tag, second.image_id) == (first.tag, first.image_id)
        assert second.inputs_hash is not None
        assert first.tag.endswith(":" + second.inputs_hash[:16])
    assert time.monotonic() - started < 10.0


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_postgres_image_serves_pgmq(docker_api, built) -> None:
    import psycopg
    from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

    container = docker_api.containers.run(
        built["postgres-pgmq"].tag,
        detach=True,
        environment={"POSTGRES_USER": "app", "POSTGRES_PASSWORD": "s3cret", "POSTGRES_DB": "appdb"},
        tmpfs={"/var/lib/postgresql/data": "rw"},
        ports={"5432/tcp": ("127.0.0.1", None)},
        labels=RUN_LABELS,
    )
    try:
        container.reload()
        port = container.ports["5432/tcp"][0]["HostPort"]
        dsn = f"postgresql://app:s3cret@127.0.0.1:{port}/appdb"
        retrying = Retrying(
            stop=stop_after_delay(30),
            wait=wait_fixed(0.1),
            retry=retry_if_exception_type(psycopg.OperationalError),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                container.reload()
                if container.status == "exited":
                    pytest.fail(f"postgres exited:\n{container.logs().decode(errors='replace')}")
                connection = psycopg.connect(dsn, connect_timeout=2, autocommit=True)
        with connection:
            connection.execute("CREATE EXTENSION pgmq")
            connection.execute("SELECT pgmq.create('smoke')")
            connection.execute("""SELECT pgmq.send('smoke', '{"n": 1}'::jsonb)""")
            message = connection.execute("SELECT message FROM pgmq.read('smoke', 30, 1)").fetchone()
            version = connection.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'pgmq'"
            ).fetchone()
            fsync = connection.execute("SHOW fsync").fetchone()
        assert message == ({"n": 1},)
        assert version == (bundled_pgmq_version(),)
        assert fsync == ("off",)
        exit_code, _ = container.exec_run(["pg_isready", "-h", "127.0.0.1", "-U", "app"])
        assert exit_code == 0
    finally:
        container.remove(force=True)


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_postgres_image_works_as_testcontainers_postgres(
    docker_api, built, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg
    from testcontainers.community.postgres import PostgresContainer
    from testcontainers.core.config import testcontainers_config

    monkeypatch.setattr(testcontainers_config, "ryuk_disabled", True)  # Ryuk can't be pulled
    database = PostgresContainer(
        built["postgres-pgmq"].tag,
        username="tc",
        password="tc-pass",
        dbname="tcdb",
        driver=None,
    ).with_tmpfs_mount("/var/lib/postgresql/data")
    # Publish on 127.0.0.1 only. testcontainers 4.15's with_bind_ports() takes no host IP,
    # but its `ports` dict goes to docker-py as is, and docker-py accepts (ip, port).
    database.ports["5432"] = ("127.0.0.1", None)  # type: ignore[assignment]
    with database:  # start() waits with `psql ... -c 'select version();'` inside the container
        wrapped = database.get_wrapped_container()
        wrapped.reload()
        port = wrapped.ports["5432/tcp"][0]["HostPort"]
        dsn = f"postgresql://tc:tc-pass@127.0.0.1:{port}/tcdb"
        with psycopg.connect(dsn, connect_timeout=5) as connection:
            row = connection.execute("SELECT current_user, current_database()").fetchone()
    assert row == ("tc", "tcdb")


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_backend_image_runs_the_cli_as_non_root(docker_api, built) -> None:
    tag = built["backend"].tag
    help_text = docker_api.containers.run(tag, ["--help"], remove=True, labels=RUN_LABELS)
    uid = docker_api.containers.run(tag, ["-u"], entrypoint=["id"], remove=True, labels=RUN_LABELS)

    for command in ("serve", "worker", "migrate"):
        assert command in help_text.decode()
    assert uid.decode().strip() != "0"
