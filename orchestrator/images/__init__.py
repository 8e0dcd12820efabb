"""Build the stack's Docker images, offline-capable and cached by a hash of their inputs.

Two images, `ci-stack/postgres-pgmq:<hash>` and `ci-stack/backend:<hash>`, built from
`images/<name>/Dockerfile`. Their `BASE_IMAGE` is the Dockerfile's public default when that
image is in the local store, else the Debian base that `bootstrap_base_image()` makes with
debootstrap + `docker import` for machines without a registry. The tag is a content hash of
everything the build sees (context files, base image id, build args): a tag that exists is a
build that needs no doing.

Modules: `results` (names, results, the error), `hashing` (inputs hash and tag), `paths`,
`wheels` (the backend's wheels), `context` (build contexts), `client` (docker-py),
`build` (base resolution, builds, :latest), `bootstrap` (the offline base), `cli`.
"""

from orchestrator.images.bootstrap import (
    BASE_TAG,
    BOOTSTRAP_COMMAND,
    DEBIAN_MIRROR,
    DEBIAN_SECURITY_MIRROR,
    bootstrap_base_image,
)
from orchestrator.images.build import build_images, resolve_base_image, tag_latest
from orchestrator.images.cli import main
from orchestrator.images.client import docker_client
from orchestrator.images.context import BuildContext, build_context, write_build_context
from orchestrator.images.hashing import ContextSource, image_inputs_hash, image_tag
from orchestrator.images.paths import default_cache_dir, default_repo_root
from orchestrator.images.results import (
    IMAGE_NAMES,
    IMAGE_REPOSITORY,
    LABEL_PREFIX,
    BaseChoice,
    BuildStatus,
    ImageBuildFailed,
    ImageName,
    ImageResult,
)
from orchestrator.images.wheels import WheelSet, prepare_wheels, project_source_files

__all__ = [
    "BASE_TAG",
    "BOOTSTRAP_COMMAND",
    "DEBIAN_MIRROR",
    "DEBIAN_SECURITY_MIRROR",
    "IMAGE_NAMES",
    "IMAGE_REPOSITORY",
    "LABEL_PREFIX",
    "BaseChoice",
    "BuildContext",
    "BuildStatus",
    "ContextSource",
    "ImageBuildFailed",
    "ImageName",
    "ImageResult",
    "WheelSet",
    "bootstrap_base_image",
    "build_context",
    "build_images",
    "default_cache_dir",
    "default_repo_root",
    "docker_client",
    "image_inputs_hash",
    "image_tag",
    "main",
    "prepare_wheels",
    "project_source_files",
    "resolve_base_image",
    "tag_latest",
    "write_build_context",
]
