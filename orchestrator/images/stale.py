"""`clean --images` and `images prune`: remove this checkout's images that no build would use.

The Docker daemon is shared: other checkouts (and other tools) keep images there, and may be
running them. So an image is removed only when it provably is this checkout's:

- it carries `ci-stack.checkout=<checkout_id()>` (every build labels its image, and build
  stages that ask for it, with the checkout that built it);
- a tag: it is the image's own build tag (`ci-stack/<ci-stack.image>:<inputs hash>`), not
  the tag of an image made FROM ours (those inherit our labels, e.g. `ci-stack/notes:*`),
  and not one of the tags this checkout would build now (current: from the app profile's
  image recipes; an image no recipe names stays); `:latest` and the offline base stay;
- untagged (a build stage, or a build whose tag moved on): it carries our label.

Everything else stays: unlabelled images (built before the label existed, or by hand) and
other checkouts'. An image a container uses stays too (Docker refuses). `Pruned.summary()`
says in one line what was removed and what was kept, why, with counts.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import PrerequisiteMissing
from orchestrator.images.base import BaseResolver
from orchestrator.images.bootstrap import BASE_TAG
from orchestrator.images.context import build_context
from orchestrator.images.hashing import image_inputs_hash, image_tag
from orchestrator.images.paths import checkout_id
from orchestrator.images.recipe import ImageRecipe
from orchestrator.images.results import (
    CHECKOUT_LABEL,
    IMAGE_LABEL,
    IMAGE_REPOSITORY,
    INPUTS_HASH_LABEL,
)

if TYPE_CHECKING:
    from docker import DockerClient

log = logging.getLogger(__name__)

# Why an image stayed, as `Pruned.summary()` words it.
KEPT_CURRENT = "current"
KEPT_SHARED = ":latest or the offline base"
KEPT_UNLABELLED = "no checkout label"
KEPT_FOREIGN = "another checkout's"
KEPT_DERIVED = "made FROM ours by something else"
KEPT_UNKNOWN = "current tag unknown"
KEPT_IN_USE = "in use"


@dataclass
class Pruned:
    """What a prune removed, and how many it kept for which reason."""

    checkout: str
    removed: list[str] = field(default_factory=list)
    kept: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        reasons = ", ".join(f"{count} {why}" for why, count in self.kept.most_common())
        kept = f"kept {sum(self.kept.values())}" + (f" ({reasons})" if reasons else "")
        return f"images of checkout {self.checkout}: removed {len(self.removed)}, {kept}"


def current_tags(
    client: DockerClient, recipes: Sequence[ImageRecipe], *, cache_dir: Path | None = None
) -> set[str]:
    """The content-hash tags `build_images(recipes)` would use now, for bases already local."""
    return _current(client, recipes, cache_dir=cache_dir)[0]


def _current(
    client: DockerClient, recipes: Sequence[ImageRecipe], *, cache_dir: Path | None
) -> tuple[set[str], set[str]]:
    """(current tags, names whose current tag is known: every other name's images stay)."""
    resolver = BaseResolver(client)
    tags: set[str] = set()
    known: set[str] = set()
    for recipe in recipes:
        if not recipe.dockerfile.is_file():
            continue  # this checkout does not build it: leave its images alone
        try:
            found = resolver.resolve_local(recipe)
        except PrerequisiteMissing:
            known.add(recipe.name)
            continue  # no base here: no build of it can be current
        try:
            context = build_context(recipe, cache_dir=cache_dir)
        except PrerequisiteMissing as exc:
            log.info("kept every %s image: its current tag is unknown (%s)", recipe.name, exc)
            continue
        digest = image_inputs_hash(
            context.files,
            base_image_id=found.image_id,
            buildargs={**recipe.buildargs, "BASE_IMAGE": found.ref},
        )
        tags.add(image_tag(recipe.name, digest))
        known.add(recipe.name)
    return tags, known


def remove_stale_images(
    client: DockerClient,
    keep_current: bool = True,
    *,
    recipes: Sequence[ImageRecipe] = (),
    project_root: Path | None = None,
    cache_dir: Path | None = None,
    repository: str = IMAGE_REPOSITORY,
    current: Iterable[str] | None = None,
    label: str | None = None,
) -> Pruned:
    """Remove this checkout's stale tags under `repository/` and its untagged images.

    `keep_current=False` removes the current content-hash tags too (the next run rebuilds);
    they are worked out from `recipes` (an image no recipe names is kept, as its current tag
    is unknown), or given as `current`; `label` (`key=value`) touches only images that carry
    it, e.g. one run's label. `project_root` names the checkout (default: the project of the
    working directory).
    """
    pruned = Pruned(checkout_id(project_root))
    keep: set[str] = set()
    known: set[str] | None = None  # None: every name's current tag is known
    if keep_current:
        if current is not None:
            keep = set(current)
        else:
            keep, known = _current(client, recipes, cache_dir=cache_dir)
    filters = {"label": label} if label else None
    why: str | None
    for image in client.images.list(filters=filters):
        labels: dict[str, str] = dict(image.labels or {})
        ours = [tag for tag in image.tags if tag.startswith(repository + "/")]
        if not image.tags and IMAGE_LABEL in labels:
            why = _not_ours(labels, pruned.checkout)
            _remove_or_keep(client, image.id, why, pruned)
        for tag in ours:
            repo, _, version = tag.rpartition(":")
            if version == "latest" or tag == BASE_TAG:
                why = KEPT_SHARED
            else:
                why = _not_ours(labels, pruned.checkout)
            if why is None and not _built_as(labels, repo, version, repository):
                why = KEPT_DERIVED
            if why is None and tag in keep:
                why = KEPT_CURRENT
            if why is None and known is not None and labels.get(IMAGE_LABEL) not in known:
                why = KEPT_UNKNOWN
            _remove_or_keep(client, tag, why, pruned)
    return pruned


def _not_ours(labels: dict[str, str], checkout: str) -> str | None:
    owner = labels.get(CHECKOUT_LABEL)
    if not owner:
        return KEPT_UNLABELLED
    return None if owner == checkout else KEPT_FOREIGN


def _built_as(labels: dict[str, str], repo: str, version: str, repository: str) -> bool:
    """Whether `repo:version` is the tag this image was built under (not one FROM it)."""
    inputs_hash = labels.get(INPUTS_HASH_LABEL, "")
    return (
        repo == f"{repository}/{labels.get(IMAGE_LABEL)}"
        and bool(version)
        and inputs_hash.startswith(version)
    )


def _remove_or_keep(client: DockerClient, ref: str, why: str | None, pruned: Pruned) -> None:
    """Remove `ref` (a tag, or an untagged image's id) unless there is a reason to keep it."""
    from docker.errors import APIError, NotFound

    if why is None:
        try:
            client.images.remove(ref)
        except NotFound:
            return  # gone meanwhile
        except APIError as exc:
            log.info("kept %s: %s", ref, _explanation(exc))
            why = KEPT_IN_USE
        else:
            pruned.removed.append(ref)
            return
    pruned.kept[why] += 1


def _explanation(exc: Any) -> str:
    return str(getattr(exc, "explanation", None) or exc)
