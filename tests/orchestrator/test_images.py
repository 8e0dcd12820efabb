"""Tests of orchestrator/images: the inputs hash (no Docker), where bases come from (a pull
that fails for real here, the offline bootstrap for real, the pull's progress on a canned event
stream), progress and logs of real builds, stale-image removal, then real builds and runs."""

from __future__ import annotations

import io
import re
import shutil
import tarfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from backend.stack_profile import BackendProfile as DemoProfile
from orchestrator import images
from orchestrator.contract import RUN_LABEL
from orchestrator.errors import PrerequisiteMissing
from orchestrator.pgmq_extension import bundled_pgmq_version

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


def test_a_source_tree_skips_caches_and_bytecode(tmp_path: Path) -> None:
    names = (
        "pkg/__init__.py", "pkg/sub/data.json", "pkg/__pycache__/m.cpython-311.pyc",
        "pkg/x.egg-info/PKG-INFO", "pkg/.hidden",
    )  # fmt: skip
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")

    assert sorted(images.source_tree(tmp_path / "pkg", "project/pkg")) == [
        "project/pkg/__init__.py",
        "project/pkg/sub/data.json",
    ]


def test_a_recipes_generated_files_replace_its_folders_on_disk(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("ARG BASE_IMAGE=debian:bookworm\nFROM ${BASE_IMAGE}\n")
    (tmp_path / "deps" / "stale.tar.gz").parent.mkdir()
    (tmp_path / "deps" / "stale.tar.gz").write_text("left by `images context`")
    recipe = images.ImageRecipe("app", tmp_path, lambda _cache: {"deps/new.tar.gz": b"new"})

    context = images.build_context(recipe, cache_dir=tmp_path / "cache")

    assert sorted(context.files) == ["Dockerfile", "deps/new.tar.gz"]
    assert context.default_base == "debian:bookworm"


def test_the_database_image_ships_in_the_package() -> None:
    recipe = images.postgres_pgmq_image()

    assert recipe.directory.is_relative_to(Path(images.__file__).parent)
    assert recipe.dockerfile.is_file()


def test_postgres_context_carries_the_bundled_pgmq_files() -> None:
    context = images.build_context(images.postgres_pgmq_image())
    version = bundled_pgmq_version()
    assert {"Dockerfile", "pgmq-entrypoint.sh", "pgmq/pgmq.control"} <= set(context.files)
    assert f"pgmq/pgmq--{version}.sql" in context.files
    assert context.default_base == "postgres:16-bookworm"


# --- Docker: bootstrap, build, run -----------------------------------------------------------


def _can_bootstrap() -> bool:
    return images.bootstrap_unavailable() is None


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> list[images.ImageRecipe]:
    """The demo profile's recipes with copies of their folders, so edits made to the
    checkout meanwhile don't move tags."""
    root = tmp_path_factory.mktemp("images")
    recipes = []
    for recipe in DemoProfile().images():
        folder = root / recipe.name
        shutil.copytree(recipe.directory, folder, ignore=shutil.ignore_patterns("pgmq", "deps"))
        recipes.append(replace(recipe, directory=folder))
    return recipes


@pytest.fixture(scope="module")
def built(docker_api, snapshot: list[images.ImageRecipe]) -> dict[str, images.ImageResult]:
    """Both images, from whichever base this machine can provide (bootstrapped if need be)."""
    try:
        return images.build_images(snapshot, client=docker_api)
    except PrerequisiteMissing as exc:
        pytest.skip(f"no base image can be had here: {exc}")


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_bootstrap_is_idempotent(docker_api) -> None:
    if not docker_api.images.list(name=images.BASE_TAG) and not _can_bootstrap():
        pytest.skip("needs root and mmdebstrap or debootstrap (apt-get install mmdebstrap)")
    first = images.bootstrap_base_image(client=docker_api)
    second = images.bootstrap_base_image(client=docker_api)

    assert second.status == "cached"
    assert second.image_id == first.image_id
    assert second.tag == images.BASE_TAG
    assert second.seconds < 2.0


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_second_build_is_cached_under_the_same_tag(docker_api, snapshot, built) -> None:
    started = time.monotonic()
    again = images.build_images(snapshot, client=docker_api)

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
            server = connection.execute("SHOW server_version_num").fetchone()
        assert message == ({"n": 1},)
        # PostgreSQL 16 from either base: the registry's image, or the offline base's copy of
        # the local provider's build (no apt-installed 15 any more).
        assert server is not None and int(server[0]) // 10000 == 16
        assert version == (bundled_pgmq_version(),)
        assert fsync == ("off",)
        exit_code, _ = container.exec_run(["pg_isready", "-h", "127.0.0.1", "-U", "app"])
        assert exit_code == 0
    finally:
        container.remove(force=True)


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_postgres_image_starts_from_its_initdbed_template(docker_api, built) -> None:
    """POSTGRES_USER=postgres: the data dir made at build time is copied into the tmpfs,
    with this container's password (quotes and all) and database; no initdb at start."""
    import psycopg
    from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

    password = 'it\'s "quoted"'
    container = docker_api.containers.run(
        built["postgres-pgmq"].tag,
        detach=True,
        environment={"POSTGRES_PASSWORD": password, "POSTGRES_DB": "fromtemplate"},
        tmpfs={"/var/lib/postgresql/data": "rw"},
        ports={"5432/tcp": ("127.0.0.1", None)},
        labels=RUN_LABELS,
    )
    try:
        container.reload()
        port = container.ports["5432/tcp"][0]["HostPort"]
        keywords = {"host": "127.0.0.1", "port": port, "user": "postgres", "dbname": "fromtemplate"}
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
                connection = psycopg.connect(connect_timeout=2, password=password, **keywords)
        with connection:
            connection.execute("CREATE EXTENSION pgmq")
            database = connection.execute("SELECT current_database()").fetchone()
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(connect_timeout=2, password="wrong", **keywords).close()
        logs = container.logs().decode(errors="replace")
        assert database == ("fromtemplate",)
        assert "copied from /var/lib/postgresql/template" in logs
        assert "initialised" not in logs  # the full init did not run
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


# --- where a base comes from -------------------------------------------------------------------

UNPULLABLE = "ci-stack-test-unpullable/none:1"  # no registry has it (and none answers here)


def _recipe_with_base(root: Path, base: str) -> images.ImageRecipe:
    """A postgres-pgmq recipe whose Dockerfile is FROM `base` by default."""
    dockerfile = root / "postgres-pgmq" / "Dockerfile"
    dockerfile.parent.mkdir(parents=True)
    dockerfile.write_text(f"ARG BASE_IMAGE={base}\nFROM ${{BASE_IMAGE}}\n")
    return images.ImageRecipe("postgres-pgmq", dockerfile.parent)


class _NoImages:
    def get(self, ref: str) -> Any:
        from docker.errors import ImageNotFound

        raise ImageNotFound(ref)


class _PullOnlyClient:
    """Only for the pull's event stream: a registry we cannot have here, answering a pull."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        self.images = _NoImages()
        self.api = self
        self.pulled: list[tuple[str, str]] = []

    def pull(self, repository: str, tag: str, *, stream: bool, decode: bool) -> Any:
        self.pulled.append((repository, tag))
        return iter(self.events)


def test_a_pull_prints_one_line_per_finished_layer(tmp_path: Path) -> None:
    events: list[dict[str, Any]] = [
        {"status": "Pulling from library/postgres", "id": "16-bookworm"},
        {"status": "Pulling fs layer", "id": "aaa"},
        {"status": "Pulling fs layer", "id": "bbb"},
        {"status": "Downloading", "id": "aaa", "progressDetail": {"current": 1, "total": 9}},
        {"status": "Pull complete", "id": "aaa"},
        {"status": "Already exists", "id": "ccc"},
        {"status": "Pull complete", "id": "bbb"},
        {"status": "Digest: sha256:abc"},
    ]
    client = _PullOnlyClient(events)
    out = io.StringIO()
    with images.BuildProgress(stream=out, log_path=tmp_path / "images.log") as progress:
        images.pull_image(client, "postgres:16-bookworm", progress)

    assert client.pulled == [("postgres", "16-bookworm")]
    lines = [re.sub(r" \d+\.\ds$", " <t>", line) for line in out.getvalue().splitlines()]
    assert lines == [
        "images  pull postgres:16-bookworm: pulling <t>",
        "images  pull postgres:16-bookworm: layer 1/2 pull complete <t>",
        "images  pull postgres:16-bookworm: layer 2/3 already exists <t>",
        "images  pull postgres:16-bookworm: layer 3/3 pull complete <t>",
        "images  pull postgres:16-bookworm: pulled 3 layers <t>",
    ]
    logged = (tmp_path / "images.log").read_text()
    assert "Digest: sha256:abc" in logged and "Downloading" not in logged


def test_progress_lines_carry_elapsed_time_and_verbose_shows_the_log(tmp_path: Path) -> None:
    quiet, loud = io.StringIO(), io.StringIO()
    for stream, verbose in ((quiet, False), (loud, True)):
        with images.BuildProgress(stream, tmp_path / f"{verbose}.log", verbose=verbose) as p:
            p.begin("backend")
            p.step("backend", "step 1/2 RUN " + "x" * 200)
            p.log("backend", "Collecting wheels")
    (line,) = quiet.getvalue().splitlines()
    assert re.fullmatch(r"images  backend: step 1/2 RUN x{56}\.\.\. \d+\.\ds", line)
    assert "images  backend | Collecting wheels" in loud.getvalue()
    assert "backend | Collecting wheels" in (tmp_path / "False.log").read_text()


def test_an_error_in_the_pull_stream_is_a_pull_failure() -> None:
    client = _PullOnlyClient([{"error": "toomanyrequests: rate limit"}])
    with pytest.raises(images.PullFailed, match="toomanyrequests"):
        images.pull_image(client, "python:3.11-slim-bookworm", images.BuildProgress(io.StringIO()))


@pytest.mark.docker
def test_public_base_that_cannot_be_pulled_is_one_line(docker_api, tmp_path: Path) -> None:
    recipe = _recipe_with_base(tmp_path, UNPULLABLE)
    out = io.StringIO()
    resolver = images.BaseResolver(docker_api, progress=images.BuildProgress(out))
    with pytest.raises(PrerequisiteMissing) as raised:
        resolver.resolve(recipe, "public")

    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"no base image for postgres-pgmq: none of {UNPULLABLE} is in")
    assert f"pulling {UNPULLABLE} failed (" in message
    assert message.endswith(f"Fix: `docker pull {UNPULLABLE}` where a registry is reachable")
    assert f"pull {UNPULLABLE}: pulling" in out.getvalue()  # it did try


@pytest.mark.docker
def test_can_provide_images_says_why_not_without_building(
    docker_api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = _recipe_with_base(tmp_path, UNPULLABLE)
    offline = f"ci-stack-test-{uuid.uuid4().hex[:8]}/debian-base:none"
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no bootstrap tool on this "machine"
    started = time.perf_counter()
    ok, why = images.can_provide_images(docker_api, [recipe], offline_tag=offline)
    assert time.perf_counter() - started < 10  # asks, never builds
    assert not ok
    assert why.startswith(f"no base image for postgres-pgmq: {UNPULLABLE} and {offline} are not")
    assert "neither mmdebstrap nor debootstrap is installed. Fix: `docker pull" in why
    assert "\n" not in why

    monkeypatch.undo()
    ok, how = images.can_provide_images(docker_api, [recipe], offline_tag=offline)
    if _can_bootstrap():
        assert (ok, how) == (True, f"postgres-pgmq FROM {offline} (to bootstrap, ~40 s)")
    else:
        assert not ok


def _import_tiny_image(client: Any, repository: str, tag: str, content: bytes) -> str:
    """A one-file image made by `docker import` (no base, no registry), with our labels."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("marker")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    labels = {f"{images.LABEL_PREFIX}.image": "test", **RUN_LABELS}
    client.api.import_image_from_data(
        archive.getvalue(),
        repository=repository,
        tag=tag,
        changes=[f"LABEL {key}={value}" for key, value in labels.items()],
    )
    return str(client.images.get(f"{repository}:{tag}").id)


@pytest.mark.docker
def test_can_provide_images_uses_a_local_base(docker_api, tmp_path: Path) -> None:
    repository = f"ci-stack-test-{uuid.uuid4().hex[:8]}/base"
    _import_tiny_image(docker_api, repository, "1", b"base")
    try:
        recipe = _recipe_with_base(tmp_path, f"{repository}:1")
        ok, how = images.can_provide_images(docker_api, [recipe])
        assert (ok, how) == (True, f"postgres-pgmq FROM local {repository}:1")
    finally:
        docker_api.images.remove(f"{repository}:1", force=True)


def _import_build(
    client: Any, repository: str, name: str, digest: str, checkout: str | None, **extra: str
) -> str:
    """A tiny image labelled as a build of `name` with inputs hash `digest` by `checkout`."""
    labels = {
        f"{images.LABEL_PREFIX}.image": name,
        f"{images.LABEL_PREFIX}.inputs-hash": digest,
        **({images.CHECKOUT_LABEL: checkout} if checkout else {}),
        **RUN_LABELS,
        **extra,
    }
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("marker")
        content = uuid.uuid4().bytes
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    tag = f"{repository}/{name}:{digest[:16]}"
    repo, _, version = tag.rpartition(":")
    client.api.import_image_from_data(
        archive.getvalue(), repository=repo, tag=version,
        changes=[f"LABEL {key}={value}" for key, value in labels.items()],
    )  # fmt: skip
    return str(client.images.get(tag).id)


@pytest.mark.docker
def test_only_this_checkouts_stale_images_go(docker_api, tmp_path: Path) -> None:
    repository = f"ci-stack-test-{uuid.uuid4().hex[:8]}"
    mine, other = images.checkout_id(tmp_path), images.checkout_id(tmp_path / "other")
    h = [uuid.uuid4().hex * 2 for _ in range(6)]
    current = _import_build(docker_api, repository, "backend", h[0], mine)
    docker_api.api.tag(current, f"{repository}/backend", "latest")
    old = _import_build(docker_api, repository, "backend", h[1], mine)
    replaced = _import_build(docker_api, repository, "postgres-pgmq", h[2], mine)
    newer = _import_build(docker_api, repository, "postgres-pgmq", h[2], mine)  # replaced: untagged
    foreign = _import_build(docker_api, repository, "backend", h[3], other)
    unlabelled = _import_build(docker_api, repository, "backend", h[4], None)
    # An app's image made FROM our backend inherits its labels, under a tag of its own.
    derived = _import_build(docker_api, repository, "backend", h[0], mine)
    docker_api.api.tag(derived, f"{repository}/notes", h[5][:16])
    docker_api.images.remove(f"{repository}/backend:{h[0][:16]}")  # back to `current`'s
    docker_api.api.tag(current, f"{repository}/backend", h[0][:16])
    run_label = "{}={}".format(*next(iter(RUN_LABELS.items())))
    current_tags = {f"{repository}/backend:{h[0][:16]}", f"{repository}/postgres-pgmq:{h[2][:16]}"}
    try:
        pruned = images.remove_stale_images(
            docker_api, repository=repository, current=current_tags, label=run_label,
            project_root=tmp_path,
        )  # fmt: skip
        assert sorted(pruned.removed) == sorted([f"{repository}/backend:{h[1][:16]}", replaced])
        assert pruned.kept == {
            "current": 2, ":latest or the offline base": 1, "another checkout's": 1,
            "no checkout label": 1, "made FROM ours by something else": 1,
        }  # fmt: skip
        assert "removed 2, kept 6 (2 current, " in pruned.summary()
        left = {image.id for image in docker_api.images.list(filters={"label": run_label})}
        assert left >= {current, newer, foreign, unlabelled, derived}
        assert not left & {old, replaced}

        everything = images.remove_stale_images(
            docker_api, keep_current=False, repository=repository, label=run_label,
            project_root=tmp_path,
        )  # fmt: skip
        assert sorted(everything.removed) == sorted(current_tags)
        assert sorted(docker_api.images.get(foreign).tags) == [f"{repository}/backend:{h[3][:16]}"]
        assert docker_api.images.get(unlabelled).tags == [f"{repository}/backend:{h[4][:16]}"]
        assert docker_api.images.get(derived).tags == [f"{repository}/notes:{h[5][:16]}"]
    finally:
        for image in docker_api.images.list(filters={"label": run_label}):
            if any(tag.startswith(repository) for tag in image.tags) or not image.tags:
                docker_api.images.remove(image.id, force=True)


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_builds_print_a_line_per_step_and_log_everything(
    docker_api, snapshot: list[images.ImageRecipe], built, tmp_path: Path
) -> None:
    (database,) = [r for r in snapshot if r.name == "postgres-pgmq"]
    recipe = replace(database, directory=tmp_path / "postgres-pgmq")
    shutil.copytree(database.directory, recipe.directory)
    dockerfile = recipe.dockerfile
    marker = uuid.uuid4().hex
    dockerfile.write_text(dockerfile.read_text() + f"RUN echo {marker}\n")  # a new last layer
    out = io.StringIO()
    log_path = tmp_path / "logs" / "images.log"
    with images.BuildProgress(stream=out, log_path=log_path) as progress:
        result = images.build_images(
            [recipe],
            client=docker_api,
            progress=progress,
            labels=RUN_LABELS,
        )["postgres-pgmq"]
    try:
        lines = out.getvalue().splitlines()
        steps = [line for line in lines if re.match(r"images  postgres-pgmq: step \d+/\d+ ", line)]
        assert steps[0].startswith("images  postgres-pgmq: step 1/")
        assert all(re.search(r" \d+\.\ds$", line) for line in lines)
        assert any(f"RUN echo {marker}" in line for line in steps)
        assert lines[-1].startswith(f"images  postgres-pgmq: built {result.tag} ")
        logged = log_path.read_text()
        assert f"postgres-pgmq | {marker}" in logged  # the RUN's own output: only in the log
        assert f"{marker}" not in "\n".join(line for line in lines if "RUN echo" not in line)
    finally:
        docker_api.images.remove(result.tag, force=True)


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_auto_bootstraps_the_offline_base_when_it_cannot_pull(
    docker_api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not _can_bootstrap():
        pytest.skip("needs root and mmdebstrap or debootstrap (apt-get install mmdebstrap)")
    monkeypatch.setenv("CI_STACK_CACHE_DIR", str(tmp_path / "cache"))  # no root fs kept yet
    recipe = _recipe_with_base(tmp_path, UNPULLABLE)
    offline = f"ci-stack-test-{uuid.uuid4().hex[:8]}/debian-base:bookworm"
    out = io.StringIO()
    resolver = images.BaseResolver(
        docker_api,
        progress=images.BuildProgress(out),
        offline_tag=offline,
        labels=RUN_LABELS,
    )
    try:
        found = resolver.resolve(recipe)
        assert (found.ref, found.source) == (offline, "bootstrapped")
        assert resolver.resolve(recipe).source == "local"  # made once, then found
        text = out.getvalue()
        assert f"pull {UNPULLABLE}: pulling" in text
        tool = images.bootstrap_tool()
        assert f"debian-base: {tool} --variant=minbase bookworm from " in text
        finished = {"mmdebstrap": "success in", "debootstrap": "Base system installed"}
        assert f"debian-base: {tool}: {finished[str(tool)]}" in text
        assert "debian-base: PostgreSQL 16." in text  # the local provider's, in the base
        assert f"debian-base: bootstrapped {offline}" in text
        assert len(text.splitlines()) < 40  # a line per phase, not per package

        # Made again (say after a prune): from the root fs kept in the cache, no debootstrap.
        docker_api.images.remove(offline, force=True)
        again = io.StringIO()
        started = time.perf_counter()
        made = images.bootstrap_base_image(
            offline, client=docker_api, progress=images.BuildProgress(again), labels=RUN_LABELS
        )
        assert made.status == "built"
        assert f"{tool}:" not in again.getvalue()
        assert "debian-base: root fs from " in again.getvalue()
        assert time.perf_counter() - started < 60
    finally:
        if docker_api.images.list(name=offline):
            docker_api.images.remove(offline, force=True)
