"""Build the images unless their content-hash tag exists; resolve their base; tag :latest."""

from __future__ import annotations

import contextlib
import logging
import re
import tempfile
import time
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.images.base import BaseImage, BaseResolver
from orchestrator.images.bootstrap import BASE_TAG
from orchestrator.images.client import client_scope, local_image
from orchestrator.images.context import (
    BuildContext,
    build_context,
    write_context_tar,
)
from orchestrator.images.hashing import image_inputs_hash, image_tag
from orchestrator.images.paths import checkout_id
from orchestrator.images.progress import BuildProgress
from orchestrator.images.recipe import ImageRecipe
from orchestrator.images.results import (
    CHECKOUT_BUILD_ARG,
    CHECKOUT_LABEL,
    IMAGE_LABEL,
    INPUTS_HASH_LABEL,
    LABEL_PREFIX,
    TAIL_LINES,
    BaseChoice,
    BuildStatus,
    ImageBuildFailed,
    ImageResult,
)

if TYPE_CHECKING:
    from docker import DockerClient

log = logging.getLogger(__name__)
_STEP = re.compile(r"^Step (\d+/\d+) : (.*)$")  # the legacy builder's step header


def resolve_base_image(
    client: DockerClient,
    recipe: ImageRecipe,
    base: BaseChoice = "auto",
    *,
    progress: BuildProgress | None = None,
) -> tuple[str, str]:
    """`(reference, image id)` of the base to build `recipe` FROM: local, else pulled, else
    bootstrapped (see `orchestrator.images.base`); PrerequisiteMissing when none can be had."""
    found = BaseResolver(client, progress=progress).resolve(recipe, base)
    return found.ref, found.image_id


def build_images(
    recipes: Sequence[ImageRecipe],
    *,
    base: BaseChoice = "auto",
    force: bool = False,
    project_root: Path | None = None,
    cache_dir: Path | None = None,
    client: DockerClient | None = None,
    log_path: Path | None = None,
    progress: BuildProgress | None = None,
    labels: Mapping[str, str] | None = None,
    offline_tag: str = BASE_TAG,
) -> dict[str, ImageResult]:
    """Build each recipe's image unless its content-hash tag exists already; report what
    happened, by image name. The images carry the checkout id of `project_root` (default: the
    project of the working directory; `clean --images` removes only its own).

    The build contexts are prepared (e.g. an app's dependencies installed on the host) while
    the bases are resolved, one after the other (so the offline base is bootstrapped once at
    most); then the images are built side by side: while one waits on apt, the other builds.
    Progress goes to stderr, one line per step (`progress` overrides where); the whole build
    output is appended to `log_path` when given (e.g. `<artifacts>/logs/images.log`).
    `force` builds again without Docker's layer cache (e.g. to pick up newer apt packages).
    `labels` are added to what gets built (not part of the content hash). The first failure
    is raised once every build has ended.
    """
    with contextlib.ExitStack() as stack:
        report = progress or stack.enter_context(BuildProgress(log_path=log_path))
        docker_api = stack.enter_context(client_scope(client))
        resolver = BaseResolver(docker_api, progress=report, offline_tag=offline_tag, labels=labels)
        checkout = checkout_id(project_root)
        with ThreadPoolExecutor(max_workers=max(1, 2 * len(recipes))) as pool:
            contexts = {
                recipe.name: pool.submit(build_context, recipe, cache_dir=cache_dir)
                for recipe in recipes
            }
            bases: dict[str, BaseImage] = {}
            for recipe in recipes:
                report.begin(recipe.name)
                bases[recipe.name] = resolver.resolve(recipe, base)
            futures = {
                recipe.name: pool.submit(
                    _build_one,
                    docker_api,
                    recipe,
                    prepared=contexts[recipe.name],
                    found=bases[recipe.name],
                    force=force,
                    progress=report,
                    labels=labels or {},
                    checkout=checkout,
                )
                for recipe in recipes
            }
        return {name: future.result() for name, future in futures.items()}


def tag_latest(
    results: Mapping[str, ImageResult], *, client: DockerClient | None = None
) -> list[str]:
    """Also tag each image `<repository>:latest` (what compose.yaml runs); returns the tags.

    Only for humans and compose: the providers use the content-hash tags, so concurrent runs
    of different checkouts never share an image by accident.
    """
    tags: list[str] = []
    with client_scope(client) as docker_api:
        for result in results.values():
            repository = result.tag.rpartition(":")[0]
            docker_api.api.tag(result.image_id, repository, "latest", force=True)
            tags.append(f"{repository}:latest")
            log.info("tagged %s as %s:latest", result.tag, repository)
    return tags


def _build_one(
    client: DockerClient,
    recipe: ImageRecipe,
    *,
    prepared: Future[BuildContext],
    found: BaseImage,
    force: bool,
    progress: BuildProgress,
    labels: Mapping[str, str],
    checkout: str,
) -> ImageResult:
    """Build `name` unless its content-hash tag exists; labelled with the `checkout` that
    built it (on the image and its build stages: `clean --images` scopes by it)."""
    started = time.monotonic()
    name = recipe.name
    context = prepared.result()
    progress.step(name, f"context ready ({len(context.files)} files)")
    buildargs = {**recipe.buildargs, "BASE_IMAGE": found.ref}
    inputs_hash = image_inputs_hash(
        context.files, base_image_id=found.image_id, buildargs=buildargs
    )
    tag = image_tag(name, inputs_hash)

    existing = None if force else local_image(client, tag)
    status: BuildStatus = "cached"
    if existing is None:
        progress.step(name, f"building {tag} FROM {found.ref} ({found.source})")
        all_labels = {
            **labels,
            IMAGE_LABEL: name,
            INPUTS_HASH_LABEL: inputs_hash,
            f"{LABEL_PREFIX}.base-image": found.ref,
            CHECKOUT_LABEL: checkout,
        }
        cache_from = [] if force else _earlier_builds(client, name)
        _docker_build(
            client,
            context,
            tag,
            {**buildargs, CHECKOUT_BUILD_ARG: checkout},  # for the labels of build stages
            all_labels,
            nocache=force,
            cache_from=cache_from,
            progress=progress,
        )
        existing = local_image(client, tag)
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
        base_image=found.ref,
        inputs_hash=inputs_hash,
        base_source=found.source,
    )
    progress.step(name, f"{status} {tag}")
    return result


def _earlier_builds(client: DockerClient, name: str, most: int = 3) -> list[str]:
    """Tags of the latest earlier builds of `name`, as layer-cache sources: the builder
    reuses their layers even when they came from `docker load` (CI restores them from its
    cache, without the intermediate images the local layer cache needs)."""
    found = client.images.list(filters={"label": f"{LABEL_PREFIX}.image={name}"})
    found.sort(key=lambda image: str(image.attrs.get("Created", "")), reverse=True)
    return [image.tags[0] for image in found if image.tags][:most]


def _docker_build(
    client: DockerClient,
    context: BuildContext,
    tag: str,
    buildargs: Mapping[str, str],
    labels: Mapping[str, str],
    *,
    nocache: bool,
    cache_from: Sequence[str] = (),
    progress: BuildProgress,
) -> None:
    from docker.errors import APIError

    tail: deque[str] = deque(maxlen=TAIL_LINES)
    whole_log = (
        f"the whole build log is in {progress.log_path}"
        if progress.log_path
        else "rerun with --log FILE for the whole build log"
    )
    hint = f"apt needs Debian's mirror over HTTP from the build (--network host); {whole_log}"
    with tempfile.TemporaryFile(prefix="ci-stack-context-") as archive:
        write_context_tar(context.files, archive)
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
                cache_from=list(cache_from) or None,
                pull=False,
                decode=True,
            )
            for chunk in stream:
                for line in str(chunk.get("stream", "")).splitlines():
                    if line.strip():
                        tail.append(line)
                        progress.log(context.name, line)
                        step = _STEP.match(line)
                        if step:
                            progress.step(context.name, f"step {step[1]} {step[2]}")
                if "error" in chunk:
                    raise ImageBuildFailed(tag, str(chunk["error"]).strip(), list(tail), hint)
        except APIError as exc:
            raise ImageBuildFailed(tag, f"Docker refused the build: {exc}", list(tail)) from exc
