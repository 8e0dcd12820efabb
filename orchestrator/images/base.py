"""The base image a build starts FROM: local, else pulled, else bootstrapped, else one line.

For each image the candidates are its Dockerfile's public default (`ARG BASE_IMAGE=`, e.g.
`python:3.11-slim-bookworm`) and the offline Debian base (`ci-stack/debian-base:bookworm-pg16`):

1. either one in the local image store (the public one first);
2. the public one pulled, when a registry answers (with progress);
3. the offline one made by mmdebstrap (or debootstrap) + `docker import`, when one of them
   and root are here;
4. otherwise `PrerequisiteMissing` naming what was tried and how to fix it.

`can_provide_images(client, recipes)` answers the same question without pulling or building.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from orchestrator.errors import OrchestratorError, PrerequisiteMissing
from orchestrator.images.bootstrap import (
    BASE_TAG,
    BOOTSTRAP_COMMAND,
    bootstrap_base_image,
    bootstrap_unavailable,
)
from orchestrator.images.client import local_image
from orchestrator.images.context import dockerfile_default_base, read_dockerfile
from orchestrator.images.progress import BuildProgress
from orchestrator.images.recipe import ImageRecipe
from orchestrator.images.results import BaseChoice

if TYPE_CHECKING:
    from docker import DockerClient

BaseSource = Literal["local", "pulled", "bootstrapped"]


@dataclass(frozen=True)
class BaseImage:
    """The base one build uses, and where it came from (for stack.json and the log)."""

    ref: str
    image_id: str
    source: BaseSource


class PullFailed(OrchestratorError):
    """A registry did not give us an image (unreachable, unknown name, refused)."""


def public_base(recipe: ImageRecipe) -> str:
    """The `ARG BASE_IMAGE=` default of the recipe's Dockerfile."""
    return dockerfile_default_base(read_dockerfile(recipe))


class BaseResolver:
    """Resolves bases for one `build_images` call; a failed pull is not tried twice."""

    def __init__(
        self,
        client: DockerClient,
        *,
        progress: BuildProgress | None = None,
        offline_tag: str = BASE_TAG,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self.client = client
        self.labels = dict(labels or {})  # for a bootstrapped base
        self.progress = progress or BuildProgress()
        self.offline_tag = offline_tag
        self._pull_failures: dict[str, str] = {}

    def resolve(self, recipe: ImageRecipe, choice: BaseChoice = "auto") -> BaseImage:
        name = recipe.name
        public = public_base(recipe)
        wanted = {
            "auto": [public, self.offline_tag],
            "public": [public],
            "offline": [self.offline_tag],
        }[choice]
        for ref in wanted:
            found = local_image(self.client, ref)
            if found:
                return BaseImage(ref, found[0], "local")
        tried: list[str] = []
        if public in wanted:
            try:
                return BaseImage(public, self._pull(public), "pulled")
            except PullFailed as exc:
                tried.append(f"pulling {public} failed ({exc})")
        if self.offline_tag in wanted:
            unavailable = bootstrap_unavailable()
            if unavailable is None:
                made = bootstrap_base_image(
                    self.offline_tag, client=self.client, progress=self.progress, labels=self.labels
                )
                return BaseImage(self.offline_tag, made.image_id, "bootstrapped")
            tried.append(f"{self.offline_tag} cannot be bootstrapped here ({unavailable.what})")
        raise PrerequisiteMissing(
            f"no base image for {name}: none of {', '.join(wanted)} is in the local image "
            "store, " + "; ".join(tried),
            _fix(public, self.offline_tag, choice),
        )

    def resolve_local(self, recipe: ImageRecipe) -> BaseImage:
        """The base `resolve(recipe)` would take from the local store; nothing is obtained."""
        name = recipe.name
        public = public_base(recipe)
        for ref in (public, self.offline_tag):
            found = local_image(self.client, ref)
            if found:
                return BaseImage(ref, found[0], "local")
        raise PrerequisiteMissing(
            f"no base image for {name} in the local store", _fix(public, self.offline_tag, "auto")
        )

    def _pull(self, ref: str) -> str:
        if ref in self._pull_failures:
            raise PullFailed(self._pull_failures[ref])
        try:
            pull_image(self.client, ref, self.progress)
        except PullFailed as exc:
            self._pull_failures[ref] = str(exc)
            raise
        found = local_image(self.client, ref)
        if found is None:
            raise PullFailed("the pull finished but the image is not in the store")
        return found[0]


def pull_image(client: DockerClient, ref: str, progress: BuildProgress) -> None:
    """`docker pull ref`, one progress line per finished layer; PullFailed with the reason."""
    from docker.errors import APIError, DockerException

    repository, tag = _split_ref(ref)
    subject = f"pull {ref}"
    progress.begin(subject)
    progress.step(subject, "pulling")
    layers: set[str] = set()
    done: set[str] = set()
    try:
        for event in client.api.pull(repository, tag, stream=True, decode=True):
            _pull_event(event, layers, done, progress, subject)
    except APIError as exc:
        raise PullFailed(_registry_reason(exc)) from exc
    except DockerException as exc:
        raise PullFailed(str(exc)) from exc
    progress.step(subject, f"pulled {len(layers)} layers")


def can_provide_images(
    client: DockerClient,
    recipes: Sequence[ImageRecipe],
    *,
    offline_tag: str = BASE_TAG,
) -> tuple[bool, str]:
    """(True, how) when every recipe's base is local, pullable or bootstrappable; else
    (False, why + fix). Cheap: looks up local images and asks the registry for a manifest,
    builds and pulls nothing."""
    from docker.errors import APIError, DockerException

    how: list[str] = []
    for recipe in recipes:
        name = recipe.name
        public = public_base(recipe)
        local = [ref for ref in (public, offline_tag) if local_image(client, ref)]
        if local:
            how.append(f"{name} FROM local {local[0]}")
            continue
        try:
            client.api.inspect_distribution(public)
        except APIError as exc:
            registry = _registry_reason(exc)
        except DockerException as exc:
            registry = str(exc)
        else:
            how.append(f"{name} FROM {public} (to pull)")
            continue
        unavailable = bootstrap_unavailable()
        if unavailable is None:
            how.append(f"{name} FROM {offline_tag} (to bootstrap, ~40 s)")
            continue
        return False, (
            f"no base image for {name}: {public} and {offline_tag} are not local, the registry "
            f"did not answer ({registry}) and {unavailable.what}. Fix: "
            + _fix(public, offline_tag, "auto")
        )
    return True, "; ".join(how)


def _fix(public: str, offline_tag: str, choice: BaseChoice) -> str:
    pull = f"`docker pull {public}` where a registry is reachable"
    boot = (
        f"run `sudo {BOOTSTRAP_COMMAND}` (needs mmdebstrap or debootstrap, ~40 s) "
        f"to make {offline_tag}"
    )
    return {"auto": f"{pull}, or {boot}", "public": pull, "offline": boot}[choice]


def _pull_event(
    event: dict[str, Any],
    layers: set[str],
    done: set[str],
    progress: BuildProgress,
    subject: str,
) -> None:
    if "error" in event:
        raise PullFailed(str(event["error"]).strip())
    status = str(event.get("status", ""))
    layer = str(event.get("id", ""))
    if status in ("Downloading", "Extracting"):
        return  # byte counters: many per second, not worth a line or the log
    progress.log(subject, f"{layer} {status}".strip())
    if layer and status in ("Pulling fs layer", "Waiting", "Already exists", "Pull complete"):
        layers.add(layer)
    if layer and status in ("Already exists", "Pull complete") and layer not in done:
        done.add(layer)
        progress.step(subject, f"layer {len(done)}/{len(layers)} {status.lower()}")


def _split_ref(ref: str) -> tuple[str, str]:
    name, _, tag = ref.rpartition(":")
    if not name or "/" in tag:
        return ref, "latest"
    return name, tag


def _registry_reason(exc: Exception) -> str:
    explanation = getattr(exc, "explanation", None) or str(exc)
    return " ".join(str(explanation).split())[:300]
