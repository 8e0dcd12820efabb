"""The docker provider: the stack's services as containers (testcontainers-python).

One user-defined network per run, `ci-stack-<run_id>`, on which the containers are reached
by alias (`db` and each service instance's name). Images come from the app profile's
`prepare_images()`. Published ports bind to 127.0.0.1 only while the daemon is local. Every
container and the network carry `RUN_LABEL`, so `close()` and `python -m orchestrator clean`
find whatever a run left. Containers run with an init, so a stop signal reaches the service
at once. Nothing happens at import time: Ryuk is switched off when a provider is made.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from orchestrator.contract import OWNER_LABEL, RUN_ENV, RUN_LABEL
from orchestrator.embedded_postgres import SERVER_SETTINGS
from orchestrator.errors import PrerequisiteMissing, StackStartError
from orchestrator.images import docker_client
from orchestrator.ownership import Owner
from orchestrator.profile import ContainerImage
from orchestrator.providers.base import LogLines, RunningDatabase
from orchestrator.providers.docker_resources import remove_labelled
from orchestrator.spec import DB_PORT, DB_SERVICE, ServiceSpec, StackSpec, rendered

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network

    from orchestrator.config import OrchestratorConfig
    from orchestrator.profile import AppProfile

log = logging.getLogger(__name__)

SERVICE_LABEL = "ci-stack.service"
PUBLISH_IP_ENV = "CI_STACK_PUBLISH_IP"
PGDATA = "/var/lib/postgresql/data"
GONE = -1  # exit_code() of a container that no longer exists
# Our services shut down gracefully in about a second; don't wait the Stack's 10 s for one
# that hangs (the teardown budget is 5 s in all).
STOP_TIMEOUT_S = 4.0


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
    """One started container: its state, logs, stop-and-remove, and facts for stack.json."""

    stop_timeout: float = STOP_TIMEOUT_S

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
        """The image's stop signal (through the init: SIGTERM, SIGINT for postgres), up to
        `timeout` s (at most `stop_timeout`), then SIGKILL; then remove the container.

        A container that already exited or is gone is fine (not a stop timeout); any other
        Docker error is raised."""
        from docker.errors import APIError, NotFound

        started = time.perf_counter()
        grace = max(0, math.ceil(min(timeout, self.stop_timeout)))
        with contextlib.suppress(NotFound):
            if self.exit_code() is None:
                self.wrapped.stop(timeout=grace)
                code = self.exit_code()
                seconds = time.perf_counter() - started
                if code == 137 and seconds >= grace:
                    log.warning(
                        "%s ignored its stop signal for %ss and was killed", self.name, grace
                    )
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

    def __init__(self, publish_ip: str | None = None, logs_dir: Path | None = None) -> None:
        from testcontainers.core.config import testcontainers_config

        # Ryuk (testcontainers' reaper) is an image to pull; our labels + close()/clean do
        # its job. Set on the config object testcontainers reads at each container start.
        testcontainers_config.ryuk_disabled = True
        self.publish_ip = publish_ip or default_publish_ip()
        self.logs_dir = logs_dir  # where images.log goes (the run's logs/)
        self._lock = threading.Lock()
        self._client: DockerClient | None = None
        self._images: dict[str, ContainerImage] = {}
        self._run_id: str | None = None
        self._network: Network | None = None
        self._owner = Owner.current().encode()  # on every label: `clean` checks it lives

    # -- prepare ------------------------------------------------------------------------------

    def prepare(self, spec: StackSpec, app: AppProfile) -> dict[str, Any]:
        """The app profile builds (or finds) its images; facts for stack.json. A missing
        base image raises PrerequisiteMissing with the fix."""
        self._run_id = spec.run_id
        client = self._docker()
        started = time.perf_counter()
        log_path = self.logs_dir / "images.log" if self.logs_dir is not None else None
        self._images = dict(app.prepare_images(client, lambda _line: None, log_path))
        seconds = time.perf_counter() - started
        wanted = {s.image for s in spec.services if s.image} | {spec.database.image}
        missing = sorted(str(name) for name in wanted - set(self._images))
        if missing:
            raise PrerequisiteMissing(
                f"app profile {app.name!r} names image(s) {', '.join(missing)} "
                "that its prepare_images() does not provide",
                "return them from prepare_images(), or use --provider local",
            )
        version = client.version()
        return {
            "docker": {
                "server_version": version.get("Version"),
                "api_version": version.get("ApiVersion"),
                "publish_ip": self.publish_ip,
                "network": network_name(spec.run_id),
                "run_label": {RUN_LABEL: spec.run_id},
            },
            "images": {
                name: dict(image.facts or {"tag": image.tag, "image_id": image.image_id})
                for name, image in self._images.items()
            },
            "images_seconds": round(seconds, 3),
        }

    # -- database -----------------------------------------------------------------------------

    def start_database(self, spec: StackSpec) -> DockerDatabase:
        db = spec.database
        image = self._image(db.image)
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
        credentials = f"{quote(db.user, safe='')}:{quote(db.password, safe='')}"
        database = DockerDatabase(
            container,
            image,
            host_url=f"postgresql://{credentials}@{host}:{port}/{quote(db.name)}",
            service_url=f"postgresql://{credentials}@{DB_SERVICE}:{DB_PORT}/{quote(db.name)}",
        )
        database.facts.update(host=host, port=port, aliases=[DB_SERVICE], pgdata_tmpfs=PGDATA)
        return database

    # -- services -----------------------------------------------------------------------------

    def start_service(
        self, spec: StackSpec, service: ServiceSpec, instance: str, database: RunningDatabase
    ) -> DockerService:
        image = self._image(service.image)
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

    def _image(self, name: str | None) -> ContainerImage:
        if name is None or name not in self._images:
            raise PrerequisiteMissing(
                f"no container image {name!r} prepared for this service",
                "give the service an `image` its app profile's prepare_images() provides",
            )
        return self._images[name]

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
        self, spec: StackSpec, service: str, image: ContainerImage, **run_kwargs: Any
    ) -> DockerContainer:
        """A container of this run; `init`: a stop signal reaches the service at once."""
        from testcontainers.core.container import DockerContainer

        labels = {RUN_LABEL: spec.run_id, SERVICE_LABEL: service, OWNER_LABEL: self._owner}
        return (
            DockerContainer(image.tag, labels=labels, init=True, **run_kwargs)
            .with_name(container_name(spec.run_id, service))
            .with_network(self._ensure_network(spec.run_id))
            .with_network_aliases(service)
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

    def available(self, config: OrchestratorConfig, app: AppProfile) -> tuple[bool, str]:
        """A daemon answers and the app's images can be had (local, pulled or bootstrapped)."""
        ok, why = docker_answers()
        if not ok:
            return ok, why
        client = docker_client(timeout=30)
        try:
            images_ok, how = app.images_available(client)
        finally:
            client.close()
        if not images_ok:
            return False, f"{why}, but {how}"
        return True, why

    def create(self, config: OrchestratorConfig) -> DockerProvider:
        return DockerProvider(logs_dir=config.artifacts / "logs")


plugin = DockerPlugin()


def docker_answers(timeout: float = 2.0) -> tuple[bool, str]:
    """(True, version) when a Docker daemon answers a ping, else (False, why)."""
    try:
        import docker
    except ImportError:
        return False, "the docker Python package is not installed (pip install '.[docker]')"
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


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
