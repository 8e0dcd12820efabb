"""Build the stack's Docker images, offline-capable and cached by a hash of their inputs.

Two images, `ci-stack/postgres-pgmq:<hash>` and `ci-stack/backend:<hash>`, built from
`images/<name>/Dockerfile`. Their `BASE_IMAGE` comes from wherever it is: the Dockerfile's
public default or the offline Debian base when either is in the local store, else the public
one pulled when a registry answers, else the offline one made on demand by
`bootstrap_base_image()` (debootstrap + `docker import`), else one PrerequisiteMissing line.
The tag is a content hash of everything the build sees (context files, base image id, build
args): a tag that exists is a build that needs no doing. Pulls, bootstraps and builds print
one line per step on stderr (`progress`) and can log their whole output to a file.

Modules: `results` (names, results, the error), `hashing` (inputs hash and tag), `paths`,
`wheels` (the backend's installed dependencies), `context` (build contexts), `client`
(docker-py), `progress`, `base` (where a base comes from; `can_provide_images`), `build`
(builds, side by side; :latest), `bootstrap` (the offline base), `stale`
(`remove_stale_images`: only this checkout's, by the `ci-stack.checkout` label every
build puts on its image and build stages). The command line is `orchestrator.cli.images`.
"""

from orchestrator.images.base import (
    BaseImage,
    BaseResolver,
    PullFailed,
    can_provide_images,
    pull_image,
)
from orchestrator.images.bootstrap import (
    BASE_TAG,
    BOOTSTRAP_COMMAND,
    DEBIAN_MIRROR,
    DEBIAN_SECURITY_MIRROR,
    bootstrap_base_image,
    bootstrap_unavailable,
)
from orchestrator.images.build import build_images, resolve_base_image, tag_latest
from orchestrator.images.client import docker_client
from orchestrator.images.context import BuildContext, build_context, write_build_context
from orchestrator.images.hashing import ContextSource, image_inputs_hash, image_tag
from orchestrator.images.paths import checkout_id, default_cache_dir, default_repo_root
from orchestrator.images.progress import BuildProgress
from orchestrator.images.results import (
    CHECKOUT_LABEL,
    IMAGE_NAMES,
    IMAGE_REPOSITORY,
    LABEL_PREFIX,
    BaseChoice,
    BuildStatus,
    ImageBuildFailed,
    ImageName,
    ImageResult,
)
from orchestrator.images.stale import Pruned, current_tags, remove_stale_images
from orchestrator.images.wheels import DependencyTree, prepare_dependencies, project_source_files

__all__ = [
    "BASE_TAG",
    "BOOTSTRAP_COMMAND",
    "CHECKOUT_LABEL",
    "DEBIAN_MIRROR",
    "DEBIAN_SECURITY_MIRROR",
    "IMAGE_NAMES",
    "IMAGE_REPOSITORY",
    "LABEL_PREFIX",
    "BaseChoice",
    "BaseImage",
    "BaseResolver",
    "BuildContext",
    "BuildProgress",
    "BuildStatus",
    "ContextSource",
    "DependencyTree",
    "ImageBuildFailed",
    "ImageName",
    "ImageResult",
    "Pruned",
    "PullFailed",
    "bootstrap_base_image",
    "bootstrap_unavailable",
    "build_context",
    "build_images",
    "can_provide_images",
    "checkout_id",
    "current_tags",
    "default_cache_dir",
    "default_repo_root",
    "docker_client",
    "image_inputs_hash",
    "image_tag",
    "prepare_dependencies",
    "project_source_files",
    "pull_image",
    "remove_stale_images",
    "resolve_base_image",
    "tag_latest",
    "write_build_context",
]
