"""Containers and networks carrying the run label: find them, remove them.

Used by the docker provider's `close()` (its own run) and by `python -m orchestrator clean`
(what killed runs left behind). Containers go first, then networks: a network with a
container still attached cannot be removed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from orchestrator.contract import RUN_LABEL
from orchestrator.errors import OrchestratorError

if TYPE_CHECKING:
    from docker import DockerClient

log = logging.getLogger(__name__)


class DockerCleanupFailed(OrchestratorError):
    """Some labelled resources could not be removed; every one was tried."""

    def __init__(self, removed: list[str], errors: list[str]) -> None:
        self.removed = removed
        self.errors = errors
        super().__init__(
            "could not remove " + "; ".join(errors) + " (remove them with `docker rm -f` / "
            "`docker network rm`, or run `python -m orchestrator clean` again)"
        )


def label_filter(run_id: str | None = None) -> dict[str, str]:
    """A docker `filters` dict: resources of `run_id`, or of any run."""
    return {"label": f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL}


# keep(labels) -> why the resource must stay (a live run's), or None to remove it.
KeepRule = Callable[[dict[str, str]], str | None]


def remove_labelled(
    run_id: str | None = None,
    *,
    keep: KeepRule | None = None,
    skipped: list[str] | None = None,
    client: DockerClient | None = None,
) -> list[str]:
    """Remove (force) the containers, then the networks, labelled with `RUN_LABEL`.

    With `run_id`: exactly that run's resources (`keep` does not apply). Without: those of
    every run `keep` lets go; what it keeps is noted in `skipped` with the reason. Returns
    what was removed; raises DockerCleanupFailed, after trying everything, if anything could
    not be removed.
    """
    removed: list[str] = []
    errors: list[str] = []
    with _client_scope(client) as docker_api:
        filters = label_filter(run_id)
        for container in docker_api.containers.list(all=True, filters=filters, sparse=True):
            labels = _labels(container.attrs)
            name = _container_name(container.attrs)
            what = f"container {name} ({container.short_id}, run {labels.get(RUN_LABEL, '?')})"
            if _kept(what, labels, run_id, keep, skipped):
                continue
            _remove(what, lambda c=container: c.remove(force=True, v=True), removed, errors)
        for network in docker_api.networks.list(filters=filters):
            labels = _labels(network.attrs)
            what = f"network {network.name} ({network.short_id}, run {labels.get(RUN_LABEL, '?')})"
            if _kept(what, labels, run_id, keep, skipped):
                continue
            _remove(what, network.remove, removed, errors)
    if errors:
        raise DockerCleanupFailed(removed, errors)
    return removed


def _kept(
    what: str,
    labels: dict[str, str],
    run_id: str | None,
    keep: KeepRule | None,
    skipped: list[str] | None,
) -> bool:
    reason = keep(labels) if run_id is None and keep is not None else None
    if reason is not None and skipped is not None:
        skipped.append(f"{what}: {reason}")
    return reason is not None


def _remove(what: str, action: Any, removed: list[str], errors: list[str]) -> None:
    from docker.errors import APIError, NotFound

    try:
        action()
    except NotFound:
        return  # gone meanwhile: nothing left to do
    except APIError as exc:
        if exc.status_code == 409 and "already in progress" in str(exc):
            return  # someone else is removing it (e.g. a concurrent teardown)
        errors.append(f"{what}: {exc.explanation or exc}")
        return
    log.info("removed %s", what)
    removed.append(what)


def _labels(attrs: dict[str, Any]) -> dict[str, str]:
    return dict(attrs.get("Labels") or attrs.get("Config", {}).get("Labels") or {})


def _container_name(attrs: dict[str, Any]) -> str:
    names = attrs.get("Names") or [attrs.get("Name", "?")]
    return str(names[0]).lstrip("/")


@contextmanager
def _client_scope(client: DockerClient | None) -> Iterator[DockerClient]:
    if client is not None:
        yield client
        return
    from orchestrator.images import docker_client

    own = docker_client(timeout=60)
    try:
        yield own
    finally:
        own.close()
