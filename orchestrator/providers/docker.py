"""The docker provider: the stack's services as containers (testcontainers-python).

One user-defined network per run, `ci-stack-<run_id>`, on which the containers are reached
by alias (`db` and each service instance's name). Images come resolved in the spec
(`spec.images`, filled by the prepare step before the stack exists). Published ports bind
to 127.0.0.1 only while the daemon is local. Every container and the network carry
`RUN_LABEL`, so `close()` and `python -m orchestrator clean` find whatever a run left.
Nothing happens at import time: Ryuk is switched off when a provider is made.

Fast start and stop: the database image holds an initdb'ed data dir that its entrypoint
copies into the tmpfs PGDATA (no initdb per run). When the spec names the database's schema
(`DatabaseSpec.schema`), its jobs (say, migrations) run once per schema key against a
database whose data dir is then committed as an image, `<db image>-schema:<key>`; later runs
start the database from that image and don't run the jobs. Services that wait for the
database themselves (`waits_for_database`) are started with it. A stop kills and removes
(the run is over and its database is thrown away: there is nothing to drain).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from orchestrator.contract import OWNER_LABEL, RUN_ENV, RUN_LABEL
from orchestrator.embedded_postgres import SERVER_SETTINGS
from orchestrator.errors import PrerequisiteMissing, StackStartError
from orchestrator.images import LABEL_PREFIX, docker_client
from orchestrator.images.client import local_image
from orchestrator.images.hashing import cache_key
from orchestrator.ownership import Owner
from orchestrator.providers.base import LogLines, RunningDatabase
from orchestrator.providers.docker_resources import remove_labelled
from orchestrator.readiness import Readiness, postgres_ready
from orchestrator.spec import (
    DB_PORT,
    DB_SERVICE,
    ContainerImage,
    DatabaseSchema,
    ServiceSpec,
    StackSpec,
    rendered,
)

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network

    from orchestrator.config import OrchestratorConfig

log = logging.getLogger(__name__)

SERVICE_LABEL = "ci-stack.service"
PUBLISH_IP_ENV = "CI_STACK_PUBLISH_IP"
PGDATA = "/var/lib/postgresql/data"
# The database image's entrypoint fills an empty PGDATA from the data dir this names.
TEMPLATE_ENV = "CI_STACK_PGDATA_TEMPLATE"
SCHEMA_PGDATA = "/var/lib/postgresql/schema"  # where a schema image holds its data dir
SCHEMA_KEY_LABEL = f"{LABEL_PREFIX}.schema-key"
GONE = -1  # exit_code() of a container that no longer exists


def postgres_command(max_connections: int) -> list[str]:
    """`postgres` with the throwaway-database settings and the spec's connection budget."""
    settings = {**SERVER_SETTINGS, "max_connections": str(max_connections)}
    return ["postgres", *(arg for k, v in settings.items() for arg in ("-c", f"{k}={v}"))]


def network_name(run_id: str) -> str:
    return f"ci-stack-{run_id}"


def container_name(run_id: str, service: str) -> str:
    return f"ci-stack-{run_id}-{service}"


def default_publish_ip() -> str:
    """127.0.0.1 for a local daemon; all interfaces of a remote one (else unreachable).

    `CI_STACK_PUBLISH_IP` overrides, e.g. for a daemon reached through a mounted socket
    from another container, where the daemon's loopback is not ours."""
    configured = os.environ.get(PUBLISH_IP_ENV, "").strip()
    if configured:
        return configured
    from testcontainers.core.docker_client import get_docker_host

    host = get_docker_host()
    if host is None or host.startswith(("unix://", "npipe://")):
        return "127.0.0.1"
    return "0.0.0.0"


# --- running things -------------------------------------------------------------------------


class _Box:
    """One started container: its state, logs, kill-and-remove, and facts for stack.json."""

    def __init__(self, name: str, container: DockerContainer, image: ContainerImage) -> None:
        self.name = name
        self.container = container
        wrapped = container.get_wrapped_container()
        self.container_id = str(wrapped.id)
        self.facts: dict[str, Any] = {
            "container_id": self.container_id[:12],
            "container_name": wrapped.name,
            "image": image.tag,
            "image_id": image.image_id,
        }

    @property
    def wrapped(self) -> Container:
        return self.container.get_wrapped_container()

    def exit_code(self) -> int | None:
        from docker.errors import NotFound

        try:
            self.wrapped.reload()
        except NotFound:
            return GONE
        state = self.wrapped.attrs.get("State", {})
        if state.get("Status") in ("exited", "dead"):
            return int(state.get("ExitCode", GONE))
        return None

    def logs(self) -> LogLines | None:
        return follow_logs(self.container_id)

    def log_tail(self, lines: int) -> str | None:
        """`docker logs --tail` while the container exists (complete even when the follower
        lags behind an exit); None once it is gone (the harvested copy then)."""
        from docker.errors import NotFound

        try:
            raw = self.wrapped.logs(tail=lines)
        except NotFound:
            return None
        return bytes(raw).decode("utf-8", errors="replace").rstrip("\n")

    def stop(self, timeout: float) -> None:
        """Kill and remove the container in one call (`timeout` is not needed).

        The run is over when its stack stops, and the database (a tmpfs) goes with it: a
        graceful drain would only cost time. A container already gone is fine; any other
        Docker error is raised."""
        from docker.errors import APIError, NotFound

        started = time.perf_counter()
        try:
            self.wrapped.remove(v=True, force=True)
        except NotFound:
            pass
        except APIError as exc:
            if not (exc.status_code == 409 and "already in progress" in str(exc)):
                raise
        finally:
            self.container.get_docker_client().client.close()
        log.debug("%s killed and removed in %.2fs", self.name, time.perf_counter() - started)

    def describe(self) -> dict[str, Any]:
        return dict(self.facts)


class DockerDatabase(_Box):
    schema_ready = False  # a fresh container: the schema jobs run

    def __init__(
        self,
        container: DockerContainer,
        image: ContainerImage,
        host_url: str,
        service_url: str,
    ) -> None:
        super().__init__(DB_SERVICE, container, image)
        self.host_url = host_url
        self.service_url = service_url


class SkippedJob:
    """A schema job that does not run: the database started with its result in it."""

    url: str | None = None

    def __init__(self, name: str, schema_image: str) -> None:
        self.name = name
        self.line = (
            f"{name}: not run, the database was started from {schema_image}, "
            f"whose data dir holds what {name} made for this schema"
        )
        self.facts: dict[str, Any] = {"skipped": True, "schema_image": schema_image}

    def exit_code(self) -> int | None:
        return 0

    def logs(self) -> LogLines | None:
        return [self.line]

    def log_tail(self, lines: int) -> str | None:
        return self.line

    def stop(self, timeout: float) -> None:
        return None

    def describe(self) -> dict[str, Any]:
        return dict(self.facts)


class DockerService(_Box):
    def __init__(
        self, name: str, container: DockerContainer, image: ContainerImage, url: str | None
    ) -> None:
        super().__init__(name, container, image)
        self.url = url
        if url is not None:
            self.facts["url"] = url


# --- the provider ---------------------------------------------------------------------------


class DockerProvider:
    name = "docker"

    def __init__(self, publish_ip: str | None = None) -> None:
        from testcontainers.core.config import testcontainers_config

        # Ryuk (testcontainers' reaper) is an image to pull; our labels + close()/clean do
        # its job. Set on the config object testcontainers reads at each container start.
        testcontainers_config.ryuk_disabled = True
        self.publish_ip = publish_ip or default_publish_ip()
        self._lock = threading.Lock()
        self._client: DockerClient | None = None
        self._run_id: str | None = None
        self._network: Network | None = None
        self._schema_image: ContainerImage | None = None  # the database with its schema
        self._owner = Owner.current().encode()  # on every label: `clean` checks it lives
        # Services that wait for the database themselves, started with it (see start_database)
        self._early: dict[str, Future[DockerService]] = {}
        self._claimed: set[str] = set()
        self._starter: ThreadPoolExecutor | None = None

    # -- prepare ------------------------------------------------------------------------------

    def prepare(self, spec: StackSpec) -> dict[str, Any]:
        """The run's network, and the database's schema image when the spec names a schema;
        facts for stack.json. The images themselves come resolved in `spec.images`."""
        self._run_id = spec.run_id
        client = self._docker()
        self._ensure_network(spec.run_id)
        schema_facts = self._prepare_schema(spec, client) if spec.database.schema else None
        version = client.version()
        return {
            "docker": {
                "server_version": version.get("Version"),
                "api_version": version.get("ApiVersion"),
                "publish_ip": self.publish_ip,
                "network": network_name(spec.run_id),
                "run_label": {RUN_LABEL: spec.run_id},
            },
            **({"schema": schema_facts} if schema_facts else {}),
        }

    # -- the database's schema as an image ----------------------------------------------------

    def schema_image_tag(self, spec: StackSpec) -> str:
        """`<db image repository>-schema:<key>`: the key covers the schema's own key, the
        jobs' commands, the database image and what the jobs are given (user, database,
        extensions). Not the jobs' image: the schema's key speaks for what they read."""
        db = spec.database
        assert db.schema is not None
        image = _image(spec, db.image)
        jobs = [spec.service(job) for job in db.schema.jobs]
        key = cache_key(
            {
                "schema": db.schema.key,
                "jobs": [[job.name, list(job.command), dict(job.env)] for job in jobs],
                "image": image.image_id or image.tag,
                "user": db.user,
                "database": db.name,
                "extensions": list(db.extensions),
            }
        )
        return f"{image.tag.rpartition(':')[0]}-schema:{key}"

    def _prepare_schema(self, spec: StackSpec, client: DockerClient) -> dict[str, Any]:
        """Find or make the schema image; facts for stack.json. A failure to make it is
        logged and the run goes on without it (its jobs then run, and fail, as usual)."""
        schema = spec.database.schema
        assert schema is not None
        tag = self.schema_image_tag(spec)
        facts: dict[str, Any] = {"key": schema.key, "jobs": list(schema.jobs), "image": tag}
        started = time.perf_counter()
        found = local_image(client, tag)
        if found is None:
            try:
                self._make_schema_image(spec, schema, tag)
            except Exception as exc:  # an optimisation failed: the run proceeds without it
                log.warning("no schema image %s (the jobs will run): %s", tag, exc)
                return {**facts, "status": "failed", "error": str(exc)[:500]}
            found = local_image(client, tag)
            if found is None:
                return {**facts, "status": "failed", "error": "the commit left no image"}
            facts["status"] = "built"
        else:
            facts["status"] = "cached"
        facts["seconds"] = round(time.perf_counter() - started, 3)
        self._schema_image = ContainerImage(tag, found[0], facts=facts)
        return facts

    def _make_schema_image(self, spec: StackSpec, schema: DatabaseSchema, tag: str) -> None:
        """Start the database with its data dir in the container, run the schema's jobs
        against it, stop it cleanly and commit the container as `tag`."""
        db = spec.database
        image = _image(spec, db.image)
        password = secrets.token_urlsafe(18)  # the build's own: no run's secret in an image
        builder = (
            self._container(spec, "schema-db", image, alias=DB_SERVICE)
            .with_envs(
                POSTGRES_USER=db.user,
                POSTGRES_PASSWORD=password,
                POSTGRES_DB=db.name,
                PGDATA=SCHEMA_PGDATA,
            )
            .with_command(postgres_command(db.max_connections))
        )
        self._publish(builder, DB_PORT)
        builder.start()
        host, port = self._published("schema-db", builder, DB_PORT)
        box = DockerDatabase(builder, image, *_database_urls(spec, host, port, password))
        try:
            Readiness(
                service=DB_SERVICE,
                awaited=f"{db.probe.description} (building {tag})",
                probe=postgres_ready(box.host_url, db.extensions),
                exit_code=box.exit_code,
                log_tail=lambda: box.log_tail(40) or "",
                poll_interval=0.05,
            ).wait(spec.timeout)
            for job in schema.jobs:
                ran = self._run_service(spec, spec.service(job), f"{job}-schema", box)
                try:
                    code = int(ran.wrapped.wait(timeout=spec.timeout)["StatusCode"])
                    if code != 0:
                        raise StackStartError(
                            job,
                            f"exit code 0 (building {tag})",
                            f"exit code {code}",
                            ran.log_tail(40) or "",
                            exit_code=code,
                        )
                finally:
                    ran.stop(0)
            box.wrapped.stop(timeout=30)  # the image's stop signal: a clean shutdown
            config = dict(self._docker().images.get(image.tag).attrs["Config"])
            env = [e for e in config.get("Env") or [] if not e.startswith(f"{TEMPLATE_ENV}=")]
            config["Env"] = [*env, f"{TEMPLATE_ENV}={SCHEMA_PGDATA}"]
            config["Labels"] = {
                **(config.get("Labels") or {}),
                f"{LABEL_PREFIX}.image": f"{db.image}-schema",
                SCHEMA_KEY_LABEL: schema.key,
            }
            repository, _, version = tag.rpartition(":")
            box.wrapped.commit(repository, version, conf=config)
            log.info("made %s: the database after %s", tag, ", ".join(schema.jobs))
        finally:
            box.stop(0)

    # -- database -----------------------------------------------------------------------------

    def start_database(self, spec: StackSpec) -> DockerDatabase:
        db = spec.database
        image = self._schema_image or _image(spec, db.image)
        container = (
            self._container(spec, DB_SERVICE, image)
            .with_envs(
                POSTGRES_USER=db.user,
                POSTGRES_PASSWORD=db.password,
                POSTGRES_DB=db.name,
                PGDATA=PGDATA,
            )
            .with_tmpfs_mount(PGDATA)
            .with_command(postgres_command(db.max_connections))
        )
        self._publish(container, DB_PORT)
        container.start()
        host, port = self._published(DB_SERVICE, container, DB_PORT)
        database = DockerDatabase(container, image, *_database_urls(spec, host, port, db.password))
        database.facts.update(host=host, port=port, aliases=[DB_SERVICE], pgdata_tmpfs=PGDATA)
        if self._schema_image is not None:
            database.facts["schema_image"] = self._schema_image.tag
            database.schema_ready = True  # its data dir holds what the schema jobs make
        self._start_early(spec, database)
        return database

    def _start_early(self, spec: StackSpec, database: DockerDatabase) -> None:
        """Start, while the database comes up, the containers of services that wait for it
        themselves (`waits_for_database`) and need nothing else: a container's start and
        the service's imports then overlap the database's start. `start_service` hands them
        over; `close()` removes any that never were."""
        early = [
            (service, instance)
            for service in spec.services
            if service.waits_for_database and not service.depends_on
            for instance in service.instances()
        ]
        if not early:
            return
        with self._lock:
            self._starter = self._starter or ThreadPoolExecutor(max_workers=len(early))
            for service, instance in early:
                if instance not in self._claimed:
                    self._claimed.add(instance)
                    self._early[instance] = self._starter.submit(
                        self._run_service, spec, service, instance, database
                    )

    # -- services -----------------------------------------------------------------------------

    def start_service(
        self, spec: StackSpec, service: ServiceSpec, instance: str, database: RunningDatabase
    ) -> DockerService | SkippedJob:
        schema = spec.database.schema
        if self._schema_image is not None and schema and service.name in schema.jobs:
            return SkippedJob(instance, self._schema_image.tag)
        with self._lock:
            early = self._early.pop(instance, None)
            self._claimed.add(instance)
        if early is not None:
            running = early.result()
            running.facts["started_with_database"] = True
            return running
        return self._run_service(spec, service, instance, database)

    def _run_service(
        self, spec: StackSpec, service: ServiceSpec, instance: str, database: RunningDatabase
    ) -> DockerService:
        image = _image(spec, service.image)
        values = {
            "python": "python",
            "host": "0.0.0.0",
            "port": str(service.port or ""),
            "instance": instance,
            "run_id": spec.run_id,
            "database_url": database.service_url,
        }
        command, env = rendered(service, values)
        if not command:
            raise StackStartError(instance, "a command to run", "the service spec has none")
        container = (
            self._container(spec, instance, image, entrypoint=command[:1])
            .with_command(command[1:])
            .with_envs(**{**env, RUN_ENV: spec.run_id})
        )
        if service.port is not None:
            self._publish(container, service.port)
        container.start()
        url = None
        if service.port is not None:
            host, port = self._published(instance, container, service.port)
            url = f"http://{_url_host(host)}:{port}"
        running = DockerService(instance, container, image, url)
        running.facts.update(command=command, aliases=[instance])
        return running

    # -- cleanup ------------------------------------------------------------------------------

    def close(self) -> None:
        """Remove leftover containers of this run (those not stopped by the Stack), then its
        network and anything else carrying its label. Raises if something stays."""
        try:
            if self._starter is not None:
                self._starter.shutdown(wait=True)  # an early start still under way ends first
                self._starter = None
            if self._run_id is not None:
                leftovers = remove_labelled(run_id=self._run_id, client=self._docker())
                for what in leftovers:
                    log.info("close: removed %s", what)
        finally:
            self._network = None
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- helpers ------------------------------------------------------------------------------

    def _docker(self) -> DockerClient:
        with self._lock:
            if self._client is None:
                self._client = docker_client(timeout=120)
            return self._client

    def _ensure_network(self, run_id: str) -> Network:
        from testcontainers.core.network import Network

        with self._lock:
            if self._network is None:
                self._run_id = run_id
                labels = {RUN_LABEL: run_id, OWNER_LABEL: self._owner}
                network = Network(docker_network_kw={"driver": "bridge", "labels": labels})
                network.name = network_name(run_id)
                self._network = network.create()
            return self._network

    def _container(
        self,
        spec: StackSpec,
        service: str,
        image: ContainerImage,
        alias: str | None = None,
        **run_kwargs: Any,
    ) -> DockerContainer:
        """A container of this run, reached on its network as `alias` (default: `service`);
        `init`: a signal reaches the service at once."""
        from testcontainers.core.container import DockerContainer

        labels = {RUN_LABEL: spec.run_id, SERVICE_LABEL: service, OWNER_LABEL: self._owner}
        return (
            DockerContainer(image.tag, labels=labels, init=True, **run_kwargs)
            .with_name(container_name(spec.run_id, service))
            .with_network(self._ensure_network(spec.run_id))
            .with_network_aliases(alias or service)
        )

    def _publish(self, container: DockerContainer, port: int) -> None:
        # with_bind_ports() takes no host IP; docker-py accepts (ip, None) in `ports`.
        ports: dict[str, Any] = container.ports
        ports[f"{port}/tcp"] = (self.publish_ip, None)

    def _published(self, name: str, container: DockerContainer, port: int) -> tuple[str, int]:
        """(host, port) to reach a published container port from this machine."""
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        bindings = (wrapped.attrs["NetworkSettings"].get("Ports") or {}).get(f"{port}/tcp")
        if not bindings:
            state = wrapped.attrs.get("State", {})
            raw = wrapped.logs(tail=40)
            raise StackStartError(
                name,
                f"port {port} published on {self.publish_ip}",
                f"container {state.get('Status')}, no port binding",
                bytes(raw).decode("utf-8", errors="replace"),
                exit_code=state.get("ExitCode") if state.get("Status") == "exited" else None,
            )
        host_ip, host_port = str(bindings[0]["HostIp"]), int(bindings[0]["HostPort"])
        if _is_loopback(host_ip):
            return host_ip, host_port  # published on loopback only: the daemon is local
        return container.get_container_host_ip(), int(container.get_exposed_port(port))


class DockerPlugin:
    name = "docker"
    auto_rank = 10
    runs_images = True

    def available(self, config: OrchestratorConfig) -> tuple[bool, str]:
        """A daemon answers (whether the app's images can be had is the prepare step's)."""
        return docker_answers()

    def create(self, config: OrchestratorConfig) -> DockerProvider:
        return DockerProvider()


plugin = DockerPlugin()


def docker_answers(timeout: float = 2.0) -> tuple[bool, str]:
    """(True, version) when a Docker daemon answers a ping, else (False, why)."""
    try:
        import docker
    except ImportError:
        return False, "the docker Python package is not installed (pip install 'ci-stack[docker]')"
    try:
        client = docker.from_env(timeout=int(max(1, timeout)))
        try:
            client.ping()
            version = client.version().get("Version", "?")
        finally:
            client.close()
    except Exception as exc:
        return False, f"no Docker daemon answered ({type(exc).__name__})"
    return True, f"Docker {version} answered"


# --- log following ---------------------------------------------------------------------------


def follow_logs(container_id: str) -> Iterator[bytes]:
    """A container's output (stdout and stderr) as lines, until the container stops.

    Runs in the harvester's thread with a client of its own, closed at the end."""
    import docker
    from docker.errors import NotFound

    client = docker.from_env()
    try:
        pending = b""
        for chunk in client.api.logs(container_id, stream=True, follow=True):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            yield from lines
        if pending:
            yield pending
    except NotFound:
        return  # removed before we got to it; log_tail falls back to nothing
    finally:
        client.close()


def _database_urls(spec: StackSpec, host: str, port: int, password: str) -> tuple[str, str]:
    """The database's URLs (from this machine, from the run's network)."""
    db = spec.database
    credentials = f"{quote(db.user, safe='')}:{quote(password, safe='')}"
    return (
        f"postgresql://{credentials}@{_url_host(host)}:{port}/{quote(db.name)}",
        f"postgresql://{credentials}@{DB_SERVICE}:{DB_PORT}/{quote(db.name)}",
    )


def _image(spec: StackSpec, name: str | None) -> ContainerImage:
    """The concrete image the prepare step resolved for the request `name`."""
    if name is None or name not in spec.images:
        raise PrerequisiteMissing(
            f"no container image {name!r} in the spec (the prepare step resolves them)",
            "give the service an `image` its app profile's prepare_images() provides, "
            "and start the stack with open_stack() (or orchestrator.prepare.resolve_images)",
        )
    return spec.images[name]


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
