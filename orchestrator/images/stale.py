"""`clean --images`: remove our images that no build would use any more.

Ours are the images carrying the `ci-stack.image` label (every image we build or import has
it). Stale are the `ci-stack/<name>:<hash>` tags other than the ones this checkout would build
now, and our untagged (dangling) images: stages of earlier builds. The offline base and
`:latest` tags are kept; an image a container still uses is left alone (Docker refuses).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import PrerequisiteMissing
from orchestrator.images.base import BaseResolver
from orchestrator.images.bootstrap import BASE_TAG
from orchestrator.images.context import build_context
from orchestrator.images.hashing import image_inputs_hash, image_tag
from orchestrator.images.results import IMAGE_NAMES, IMAGE_REPOSITORY, LABEL_PREFIX

if TYPE_CHECKING:
    from docker import DockerClient

log = logging.getLogger(__name__)


def current_tags(
    client: DockerClient, *, repo_root: Path | None = None, cache_dir: Path | None = None
) -> set[str]:
    """The content-hash tags `build_images()` would use now, for bases already local."""
    resolver = BaseResolver(client, repo_root=repo_root)
    tags = set()
    for name in IMAGE_NAMES:
        try:
            found = resolver.resolve_local(name)
        except PrerequisiteMissing:
            continue  # no base here: no build of it can be current
        context = build_context(name, repo_root=repo_root, cache_dir=cache_dir)
        digest = image_inputs_hash(
            context.files, base_image_id=found.image_id, buildargs={"BASE_IMAGE": found.ref}
        )
        tags.add(image_tag(name, digest))
    return tags


def remove_stale_images(
    client: DockerClient,
    keep_current: bool = True,
    *,
    repo_root: Path | None = None,
    cache_dir: Path | None = None,
    repository: str = IMAGE_REPOSITORY,
    current: Iterable[str] | None = None,
    label: str | None = None,
) -> list[str]:
    """Remove stale tags under `repository/` and our dangling images; what was removed.

    `keep_current=False` removes the current content-hash tags too (the next run rebuilds);
    `current` gives them instead of computing them (`current_tags`); `label` (`key=value`)
    touches only images that carry it, e.g. one run's label.
    """
    from docker.errors import APIError

    keep: set[str] = set()
    if keep_current:
        keep = (
            set(current)
            if current is not None
            else current_tags(client, repo_root=repo_root, cache_dir=cache_dir)
        )
    keep |= {BASE_TAG}
    removed: list[str] = []
    ours = {"label": [f"{LABEL_PREFIX}.image", *([label] if label else [])]}
    for image in client.images.list(filters=ours):
        for tag in image.tags:
            repo, _, version = tag.rpartition(":")
            if not repo.startswith(repository + "/") or version == "latest" or tag in keep:
                continue
            try:
                client.images.remove(tag)
            except APIError as exc:
                log.info("kept %s: %s", tag, getattr(exc, "explanation", exc))
                continue
            removed.append(tag)
    for image in client.images.list(filters={**ours, "dangling": True}):
        try:
            client.images.remove(image.id)
        except APIError as exc:
            log.info("kept %s: %s", image.short_id, getattr(exc, "explanation", exc))
            continue
        removed.append(image.id)
    return removed
