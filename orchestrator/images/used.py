"""The images a finished run used, read from its `stack.json`: what a CI cache of images
should hold (the current ones), not every image the daemon has accumulated."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.artifacts.layout import STACK_FILE
from orchestrator.errors import OrchestratorError


class NoImagesRecorded(OrchestratorError):
    """The folder has no stack.json naming images (not a docker run, or it never started)."""


def images_used(folder: Path) -> list[str]:
    """Tags in the order first met: each built image, its base, the database's schema image."""
    path = folder / STACK_FILE
    try:
        facts = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NoImagesRecorded(
            f"{path} cannot be read ({exc.__class__.__name__}). Fix: name the artifacts "
            "folder of a run that started its stack on Docker"
        ) from None
    facts = facts if isinstance(facts, dict) else {}
    tags = _tags(facts)
    if not tags:
        raise NoImagesRecorded(
            f"{path} names no image (provider {facts.get('provider', '?')!r}). Fix: name "
            "the artifacts folder of a run that started its stack on Docker"
        )
    return tags


def _tags(facts: Mapping[str, Any]) -> list[str]:
    found: list[object] = []
    prepare = _table(facts, "prepare")
    for image in _table(prepare, "images").values():
        if isinstance(image, dict):
            found += [image.get("tag"), image.get("base_image")]
    found.append(_table(prepare, "schema").get("image"))
    database = _table(facts, "database")
    found += [database.get("schema_image"), database.get("image")]
    return list(dict.fromkeys(t for t in found if isinstance(t, str) and t))


def _table(facts: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = facts.get(key)
    return value if isinstance(value, dict) else {}
