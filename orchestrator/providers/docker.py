"""The docker provider: the stack's services as containers (testcontainers-python).

One user-defined network per run, `ci-stack-<run_id>`, on which the containers are reached
by alias (`db`, `migrate`, `backend`, `worker-N`). Images come from `orchestrator.images`
(built unless their content-hash tag exists). Published ports bind to 127.0.0.1 only while
the daemon is local. Every container and the network carry `RUN_LABEL`, so `close()` and
`python -m orchestrator clean` find whatever a run left. Container output is followed live
into the LogHarvester (`logs/<name>.log`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

# Ryuk (testcontainers' reaper) is an image to pull; our labels + close()/clean do its job.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

from testcontainers.core.config import testcontainers_config
from testcontainers.core.container import DockerContainer
from testcontainers.core.docker_client import get_docker_host
from testcontainers.core.network import Network

from orchestrator.errors import StackStartError
from orchestrator.images import ImageName, ImageResult, build_images, docker_client
from orchestrator.log_harvest import LogHarvester
from orchestrator.providers.base import RunningDatabase
from orchestrator.providers.docker_resources import remove_labelled
from orchestrator.readiness import ProbeResult, Readiness
from orchestrator.spec import (
    DB_PORT,
    RUN_LABEL,
    ProviderName,
    ServiceSpec,
    StackSpec,
)

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

if os.environ["TESTCONTAINERS_RYUK_DISABLED"].strip().lower() == "true":
    # testcontainers reads its config once, at its first import; someone may have been first.
    testcontainers_config.ryuk_disabled = True

log = logging.getLogger(__name__)

SERVICE_LABEL = "ci-stack.service"
PUBLISH_IP_ENV = "CI_STACK_PUBLISH_IP"
PGDATA = "/var/lib/postgresql/data"
GONE = -1  # exit_code() of a container that no longer exists
# Our services shut down gracefully in about a second; don't wait the Stack's 10 s for one
# that hangs (the teardown budget is 5 s in all).
STOP_TIMEOUT_S = 4.0
_DB_POLL_S = 0.1


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
    host = get_docker_host()
    if host is None or host.startswith(("unix://", "npipe://")):
        return "127.0.0.1"
    return "0.0.0.0"


# --- running things -------------------------------------------------------------------------


class _Box:
    """One started container: its state, stop-and-remove, and facts for stack.json."""

    stop_timeout: float = STOP_TIMEOUT_S

    def __init__(self, name: str, container: DockerContainer, image: ImageResult) -> None:
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

    def stop(self, timeout: float) -> None:
        """The image's stop signal (SIGTERM: graceful shutdown; SIGINT for postgres), up to
        `timeout` s (at most `stop_timeout`), then SIGKILL; then remove the container.

        A container that is already gone is fine; any other Docker error is raised."""
        from docker.errors import APIError, NotFound

        started = time.perf_counter()
        grace = max(0, math.ceil(min(timeout, self.stop_timeout)))
        with contextlib.suppress(NotFound):
            self.wrapped.stop(timeout=grace)
            code = self.exit_code()
            seconds = time.perf_counter() - started
            if code == 137:
                log.warning("%s ignored its stop signal for %ss and was killed", self.name, grace)
            else:
                log.debug("%s stopped in %.2fs with exit code %s", self.name, seconds, code)
        try:
            self.wrapped.remove(v=True, force=True)
        except NotFound:
            pass
        except APIError as exc:
            if not (exc.status_code == 409 and "already in progress" in str(exc)):
                raise
        finally:
            self.container.get_docker_client().client.close()

    def describe(self) -> dict[str, Any]:
        return dict(self.facts)


class DockerDatabase(_Box):
    def __init__(
        self,
        container: DockerContainer,
        image: ImageResult,
        host_url: str,
        service_url: str,
    ) -> None:
        super().__init__("db", container, image)
        self.host_url = host_url
        self.service_url = service_url


class DockerService(_Box):
    def __init__(
        self, name: str, container: DockerContainer, image: ImageResult, url: str | None
    ) -> None:
        super().__init__(name, container, image)
        self.url = url
        if url is not None:
            self.facts["url"] = url


# --- the provider ---------------------------------------------------------------------------


class DockerProvider:
    name: ProviderName = "docker"

    def __init__(self, harvester: LogHarvester, publish_ip: str | None = None) -> None:
        self.harvester = harvester
        self.publish_ip = publish_ip or default_publish_ip()
        self._lock = threading.Lock()
        self._client: DockerClient | None = None
        self._images: dict[ImageName, ImageResult] = {}
        self._run_id: str | None = None
        self._network: Network | None = None
        self._boxes: dict[str, _Box] = {}

    # -- prepare ------------------------------------------------------------------------------

    def prepare(self, spec: StackSpec) -> dict[str, Any]:
        """Build (or find) the images; facts for stack.json. A missing base image raises
        PrerequisiteMissing, whose fix is `python -m orchestrator images bootstrap`."""
        self._run_id = spec.run_id
        client = self._docker()
        started = time.perf_counter()
        self._images = build_images(client=client)
        seconds = time.perf_counter() - started
        version = client.version()
        return {
            "docker": {
                "server_version": version.get("Version"),
                "api_version": version.get("ApiVersion"),
                "publish_ip": self.publish_ip,
                "network": network_name(spec.run_id),
                "run_label": {RUN_LABEL: spec.run_id},
            },
            "images": {name: dataclasses.asdict(r) for name, r in self._images.items()},
            "images_seconds": round(seconds, 3),
        }

    # -- database -----------------------------------------------------------------------------

    def start_database(self, spec: StackSpec) -> DockerDatabase:
        db = spec.database
        image = self._image("postgres-pgmq")
        container = (
            self._container(spec, "db", image)
            .with_envs(
                POSTGRES_USER=db.user,
                POSTGRES_PASSWORD=db.password,
                POSTGRES_DB=db.name,
                PGDATA=PGDATA,
            )
            .with_tmpfs_mount(PGDATA)
        )
        self._publish(container, DB_PORT)
        self._start("db", container)
        host, port = self._published("db", container, DB_PORT)
        credentials = f"{quote(db.user, safe='')}:{quote(db.password, safe='')}"
        database = DockerDatabase(
            container,
            image,
            host_url=f"postgresql://{credentials}@{host}:{port}/{quote(db.name)}",
            service_url=f"postgresql://{credentials}@db:{DB_PORT}/{quote(db.name)}",
        )
        database.facts.update(host=host, port=port, aliases=["db"], pgdata_tmpfs=PGDATA)
        self._register(database)
        Readiness(
            service="db",
            awaited=db.probe.description,
            probe=postgres_probe(database.host_url),
            exit_code=database.exit_code,
            log_tail=lambda: self.log_tail("db"),
            poll_interval=_DB_POLL_S,
        ).wait(spec.timeout)
        return database

    # -- services -----------------------------------------------------------------------------

    def start_service(
        self, spec: StackSpec, service: ServiceSpec, database: RunningDatabase
    ) -> DockerService:
        image = self._image("backend")
        args = list(service.args)
        if service.role == "worker":
            args += ["--worker-id", f"{service.name}-{spec.run_id}"]
        container = (
            self._container(spec, service.name, image)
            .with_command(args)
            .with_envs(**{**service.env, "DATABASE_URL": database.service_url})
        )
        if service.port is not None:
            self._publish(container, service.port)
        self._start(service.name, container)
        url = None
        if service.port is not None:
            host, port = self._published(service.name, container, service.port)
            url = f"http://{_url_host(host)}:{port}"
        running = DockerService(service.name, container, image, url)
        running.facts.update(command=args, aliases=[service.name])
        self._register(running)
        return running

    # -- logs and cleanup ---------------------------------------------------------------------

    def log_tail(self, name: str, lines: int = 40) -> str:
        """`docker logs --tail` while the container exists (complete even when the follower
        lags behind an exit), else the harvester's copy; redacted either way."""
        from docker.errors import NotFound

        box = self._boxes.get(name)
        if box is not None:
            try:
                return self._docker_logs(box.wrapped, lines)
            except NotFound:
                pass
        try:
            return "\n".join(self.harvester.tail(name, lines))
        except KeyError:
            return f"(no log recorded for {name})"

    def close(self) -> None:
        """Remove leftover containers of this run (those not stopped by the Stack), then its
        network and anything else carrying its label. Raises if something stays."""
        try:
            if self._run_id is not None:
                leftovers = remove_labelled(run_id=self._run_id, client=self._docker())
                for what in leftovers:
                    log.info("close: removed %s", what)
        finally:
            self._network = None
            self._boxes.clear()
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- helpers ------------------------------------------------------------------------------

    def _docker(self) -> DockerClient:
        with self._lock:
            if self._client is None:
                self._client = docker_client(timeout=120)
            return self._client

    def _image(self, name: ImageName) -> ImageResult:
        if name not in self._images:
            raise RuntimeError(f"no {name} image: call DockerProvider.prepare(spec) first")
        return self._images[name]

    def _ensure_network(self, run_id: str) -> Network:
        with self._lock:
            if self._network is None:
                self._run_id = run_id
                network = Network(
                    docker_network_kw={"driver": "bridge", "labels": {RUN_LABEL: run_id}}
                )
                network.name = network_name(run_id)
                self._network = network.create()
            return self._network

    def _container(self, spec: StackSpec, service: str, image: ImageResult) -> DockerContainer:
        return (
            DockerContainer(image.tag, labels={RUN_LABEL: spec.run_id, SERVICE_LABEL: service})
            .with_name(container_name(spec.run_id, service))
            .with_network(self._ensure_network(spec.run_id))
            .with_network_aliases(service)
        )

    def _publish(self, container: DockerContainer, port: int) -> None:
        # with_bind_ports() takes no host IP; docker-py accepts (ip, None) in `ports`.
        ports: dict[str, Any] = container.ports
        ports[f"{port}/tcp"] = (self.publish_ip, None)

    def _start(self, name: str, container: DockerContainer) -> None:
        container.start()
        container_id = str(container.get_wrapped_container().id)
        self.harvester.add_stream_source(name, follow_logs(container_id))

    def _register(self, box: _Box) -> None:
        with self._lock:
            self._boxes[box.name] = box

    def _published(self, name: str, container: DockerContainer, port: int) -> tuple[str, int]:
        """(host, port) to reach a published container port from this machine."""
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        bindings = (wrapped.attrs["NetworkSettings"].get("Ports") or {}).get(f"{port}/tcp")
        if not bindings:
            state = wrapped.attrs.get("State", {})
            raise StackStartError(
                name,
                f"port {port} published on {self.publish_ip}",
                f"container {state.get('Status')}, no port binding",
                self._docker_logs(wrapped),
                exit_code=state.get("ExitCode") if state.get("Status") == "exited" else None,
            )
        host_ip, host_port = str(bindings[0]["HostIp"]), int(bindings[0]["HostPort"])
        if _is_loopback(host_ip):
            return host_ip, host_port  # published on loopback only: the daemon is local
        return container.get_container_host_ip(), int(container.get_exposed_port(port))

    def _docker_logs(self, wrapped: Container, lines: int = 40) -> str:
        raw = wrapped.logs(tail=lines)
        return self.harvester.redact(raw.decode("utf-8", errors="replace").rstrip("\n"))


# --- probes and log following ---------------------------------------------------------------


def postgres_probe(url: str) -> Callable[[], ProbeResult]:
    """Connects and checks that the pgmq extension can be created."""

    def probe() -> ProbeResult:
        import psycopg

        try:
            with psycopg.connect(url, connect_timeout=2, autocommit=True) as connection:
                row = connection.execute(
                    "SELECT count(*) FROM pg_available_extensions WHERE name = 'pgmq'"
                ).fetchone()
        except psycopg.Error as exc:
            return ProbeResult(False, f"{type(exc).__name__}: {str(exc).strip()}")
        if not row or row[0] != 1:
            return ProbeResult(False, "connected, but the pgmq extension is not available")
        return ProbeResult(True, "connected; pgmq available")

    return probe


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


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
