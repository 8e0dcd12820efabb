"""The content hash of a build's inputs, and the tag named after it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

from orchestrator.images.results import IMAGE_REPOSITORY

ContextSource = bytes | Path

_HASH_SCHEME = "ci-stack-image-inputs/1"
_TAG_HASH_LENGTH = 16
FIXED_MTIME = 315532800  # 1980-01-01, for tar headers and wheel timestamps: stable bytes


def image_inputs_hash(
    files: Mapping[str, ContextSource], *, base_image_id: str, buildargs: Mapping[str, str]
) -> str:
    """Hex SHA-256 over a build's inputs: context files, the base image's id, build args.

    File modes are derived from names (see `file_mode`), so names and contents suffice.
    """
    digest = hashlib.sha256()

    def put(*parts: str) -> None:
        for part in parts:
            digest.update(part.encode("utf-8"))
            digest.update(b"\0")

    put(_HASH_SCHEME, "base", base_image_id)
    for key in sorted(buildargs):
        put("arg", key, buildargs[key])
    for name in sorted(files):
        put("file", name, content_digest(files[name]))
    return digest.hexdigest()


def image_tag(name: str, inputs_hash: str) -> str:
    """`ci-stack/<name>:<first 16 hex digits of the inputs hash>`."""
    return f"{IMAGE_REPOSITORY}/{name}:{inputs_hash[:_TAG_HASH_LENGTH]}"


def content_digest(source: ContextSource) -> str:
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest()
    with source.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def cache_key(payload: object) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_TAG_HASH_LENGTH]


def file_mode(name: str) -> int:
    return 0o755 if name.endswith(".sh") else 0o644
