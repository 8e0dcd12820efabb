"""Build the images unless their content-hash tag exists; resolve their base; tag :latest."""

from __future__ import annotations

import logging
import tempfile
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import PrerequisiteMissing
from orchestrator.images.bootstrap import BASE_TAG, BOOTSTRAP_COMMAND
from orchestrator.images.client import _client_scope, _local_image
from orchestrator.images.context import (
    BuildContext,
    _default_base,
    _write_tar,
    build_context,
)
from orchestrator.images.hashing import image_inputs_hash, image_tag
from orchestrator.images.paths import default_repo_root
from orchestrator.images.results import (
    _TAIL_LINES,
    IMAGE_NAMES,
    LABEL_PREFIX,
    BaseChoice,
    BuildStatus,
    ImageBuildFailed,
    ImageName,
    ImageResult,
)

if TYPE_CHECKING:
    from docker import DockerClient

log = logging.getLogger(__name__)


def resolve_base_image(
    client: DockerClient,
    name: ImageName,
    base: BaseChoice = "auto",
    *,
    repo_root: Path | None = None,
) -> tuple[str, str]:
    """`(reference, image id)` of the base to build `name` FROM; nothing is pulled.

    `auto`: the Dockerfile's public default if it is in the local store, else the
    bootstrapped Debian base. `public` / `offline`: only that one.
    """
    root = repo_root or default_repo_root()
    default_base = _default_base((root / "images" / name / "Dockerfile").read_text("utf-8"))
    candidates = {
        "auto": [default_base, BASE_TAG],
        "public": [default_base],
        "offline": [BASE_TAG],
    }[base]
    for ref in candidates:
        found = _local_image(client, ref)
        if found:
            return ref, found[0]
    if base == "public":
        fix = f"`docker pull {default_base}` where a registry is reachable, or use base auto"
    else:
        fix = f"run `{BOOTSTRAP_COMMAND}` (debootstrap, ~30 s) to make {BASE_TAG}"
    raise PrerequisiteMissing(
        f"no base image for a build FROM {' or '.join(candidates)}: none is in the local "
        "Docker image store, and nothing is pulled",
        fix,
    )


def build_images(
    names: Sequence[ImageName] = IMAGE_NAMES,
    *,
    base: BaseChoice = "auto",
    force: bool = False,
    repo_root: Path | None = None,
    cache_dir: Path | None = None,
    client: DockerClient | None = None,
) -> dict[ImageName, ImageResult]:
    """Build each image unless its content-hash tag exists already; report what happened.

    `force` builds again without Docker's layer cache (e.g. to pick up newer apt packages).
    """
    results: dict[ImageName, ImageResult] = {}
    with _client_scope(client) as docker_api:
        for name in names:
            results[name] = _build_one(
                docker_api, name, base=base, force=force, repo_root=repo_root, cache_dir=cache_dir
            )
    return results


def tag_latest(
    results: Mapping[ImageName, ImageResult], *, client: DockerClient | None = None
) -> list[str]:
    """Also tag each image `<repository>:latest` (what compose.yaml runs); returns the tags.

    Only for humans and compose: the providers use the content-hash tags, so concurrent runs
    of different checkouts never share an image by accident.
    """
    tags: list[str] = []
    with _client_scope(client) as docker_api:
        for result in results.values():
            repository = result.tag.rpartition(":")[0]
            docker_api.api.tag(result.image_id, repository, "latest", force=True)
            tags.append(f"{repository}:latest")
            log.info("tagged %s as %s:latest", result.tag, repository)
    return tags


def _build_one(
    client: DockerClient,
    name: ImageName,
    *,
    base: BaseChoice,
    force: bool,
    repo_root: Path | None,
    cache_dir: Path | None,
) -> ImageResult:
    started = time.monotonic()
    root = repo_root or default_repo_root()
    base_ref, base_id = resolve_base_image(client, name, base, repo_root=root)
    context = build_context(name, repo_root=root, cache_dir=cache_dir)
    buildargs = {"BASE_IMAGE": base_ref}
    inputs_hash = image_inputs_hash(context.files, base_image_id=base_id, buildargs=buildargs)
    tag = image_tag(name, inputs_hash)

    existing = None if force else _local_image(client, tag)
    status: BuildStatus = "cached"
    if existing is None:
        log.info("building %s FROM %s", tag, base_ref)
        labels = {
            f"{LABEL_PREFIX}.image": name,
            f"{LABEL_PREFIX}.inputs-hash": inputs_hash,
            f"{LABEL_PREFIX}.base-image": base_ref,
        }
        _docker_build(client, context, tag, buildargs, labels, nocache=force)
        existing = _local_image(client, tag)
        status = "built"
    if existing is None:
        raise ImageBuildFailed(tag, "the build finished but the tag is not in the store", [])
    image_id, size = existing
    result = ImageResult(
        name=name,
        tag=tag,
        image_id=image_id,
        status=status,
        seconds=round(time.monotonic() - started, 3),
        size_bytes=size,
        base_image=base_ref,
        inputs_hash=inputs_hash,
    )
    log.info("%s %s in %.1fs", tag, status, result.seconds)
    return result


def _docker_build(
    client: DockerClient,
    context: BuildContext,
    tag: str,
    buildargs: Mapping[str, str],
    labels: Mapping[str, str],
    *,
    nocache: bool,
) -> None:
    from docker.errors import APIError

    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    hint = (
        "apt needs Debian's mirror over HTTP from the build (--network host is used); "
        "rerun with -v for the whole build log"
    )
    with tempfile.TemporaryFile(prefix="ci-stack-context-") as archive:
        _write_tar(context.files, archive)
        archive.seek(0)
        try:
            stream = client.api.build(
                fileobj=archive,
                custom_context=True,
                tag=tag,
                buildargs=dict(buildargs),
                labels=dict(labels),
                network_mode="host",
                rm=True,
                forcerm=True,
                nocache=nocache,
                pull=False,
                decode=True,
            )
            for chunk in stream:
                for line in str(chunk.get("stream", "")).splitlines():
                    if line.strip():
                        tail.append(line)
                        log.debug("%s | %s", context.name, line)
                if "error" in chunk:
                    raise ImageBuildFailed(tag, str(chunk["error"]).strip(), list(tail), hint)
        except APIError as exc:
            raise ImageBuildFailed(tag, f"Docker refused the build: {exc}", list(tail)) from exc
