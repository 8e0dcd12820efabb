"""The prepare step: everything decided about a run before its stack exists.

The app profile's spec names images by request (`ServiceSpec.image`, `DatabaseSpec.image`:
names the profile gives them); a provider that runs containers needs concrete ones. Here,
once, the profile builds or finds them and the spec comes back with `images` filled in:
from then on the Stack and its provider see only the spec, never the profile.

`images_obtainable(app)` is the cheap question `auto` asks before it picks a provider that
runs images (nothing built or pulled); `resolve_images` is the real work, timed and logged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import PrerequisiteMissing
from orchestrator.spec import StackSpec

if TYPE_CHECKING:
    from orchestrator.profile import AppProfile

ImageCheck = Callable[[], tuple[bool, str]]
IMAGE_CHECK_TIMEOUT = 30  # seconds for the daemon's answers while checking
IMAGE_BUILD_TIMEOUT = 120  # seconds per Docker API call while building or pulling


@dataclass(frozen=True)
class Prepared:
    """A spec whose image requests are concrete images, and what that took."""

    spec: StackSpec
    facts: dict[str, Any] = field(default_factory=dict)  # for stack.json


def images_obtainable(app: AppProfile) -> ImageCheck:
    """`() -> (ok, why)`: can the profile's images be had here? Asked by `auto` only of a
    provider that runs images, after that provider found its daemon."""

    def check() -> tuple[bool, str]:
        from orchestrator.images import docker_client

        client = docker_client(timeout=IMAGE_CHECK_TIMEOUT)
        try:
            return app.images_available(client)
        finally:
            client.close()

    return check


def resolve_images(spec: StackSpec, app: AppProfile, log_path: Path | None = None) -> Prepared:
    """`spec` with `images` holding a concrete image for every request; a request the
    profile does not answer raises PrerequisiteMissing naming it."""
    wanted = spec.image_requests()
    if not wanted:
        return Prepared(spec)
    from orchestrator.images import docker_client

    started = time.perf_counter()
    client = docker_client(timeout=IMAGE_BUILD_TIMEOUT)
    try:
        images = dict(app.prepare_images(client, log_path))
    finally:
        client.close()
    missing = [name for name in wanted if name not in images]
    if missing:
        raise PrerequisiteMissing(
            f"app profile {app.name!r} names image(s) {', '.join(missing)} "
            "that its prepare_images() does not provide",
            "return them from prepare_images(), or use --provider local",
        )
    facts = {
        "images": {
            name: dict(image.facts or {"tag": image.tag, "image_id": image.image_id})
            for name, image in images.items()
        },
        "images_seconds": round(time.perf_counter() - started, 3),
    }
    return Prepared(replace(spec, images=images), facts)
