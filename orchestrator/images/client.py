"""The docker-py client: connecting to the daemon and looking images up."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from orchestrator.errors import PrerequisiteMissing

if TYPE_CHECKING:
    from docker import DockerClient


def docker_client(timeout: int = 600) -> DockerClient:
    """A docker-py client for the environment's daemon, checked with a ping."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except DockerException as exc:
        raise PrerequisiteMissing(
            f"no Docker daemon answers ({exc})",
            "start one (`nohup dockerd >/var/log/dockerd.log 2>&1 &`, then wait for "
            "`docker info`), or point DOCKER_HOST at one",
        ) from exc
    return client


@contextlib.contextmanager
def client_scope(client: DockerClient | None) -> Iterator[DockerClient]:
    if client is not None:
        yield client
        return
    own = docker_client()
    try:
        yield own
    finally:
        own.close()


def local_image(client: DockerClient, ref: str) -> tuple[str, int] | None:
    from docker.errors import ImageNotFound

    try:
        image = client.images.get(ref)
    except ImageNotFound:
        return None
    return str(image.id), int(image.attrs.get("Size", 0))
