"""Build an app profile's Docker images, offline-capable and cached by a hash of their inputs.

Each image is an `ImageRecipe` the profile names (its Dockerfile's folder, generated files,
build args), built as `ci-stack/<name>:<hash>`; the PostgreSQL+PGMQ image ships in this
package (`postgres_pgmq_image()`). Its `BASE_IMAGE` comes from wherever it is: the Dockerfile's
public default or the offline Debian base when either is in the local store, else the public
one pulled when a registry answers, else the offline one made on demand by
`bootstrap_base_image()` (mmdebstrap or debootstrap + `docker import`), else one
PrerequisiteMissing line.
The tag is a content hash of everything the build sees (context files, base image id, build
args): a tag that exists is a build that needs no doing. Pulls, bootstraps and builds print
one line per step on stderr (`progress`) and can log their whole output to a file.

Modules: `recipe` (what to build), `results` (labels, results, the error), `hashing` (inputs
hash and tag), `paths`, `site_packages` (an image's Python dependencies installed on the
host), `context` (build contexts), `client`
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
    bootstrap_tool,
    bootstrap_unavailable,
)
from orchestrator.images.build import build_images, resolve_base_image, tag_latest
from orchestrator.images.client import docker_client
from orchestrator.images.context import BuildContext, build_context, write_build_context
from orchestrator.images.hashing import ContextSource, image_inputs_hash, image_tag
from orchestrator.images.paths import checkout_id, default_cache_dir, default_project_root
from orchestrator.images.progress import BuildProgress
from orchestrator.images.recipe import POSTGRES_PGMQ, ImageRecipe, postgres_pgmq_image, source_tree
from orchestrator.images.results import (
    CHECKOUT_LABEL,
    IMAGE_REPOSITORY,
    LABEL_PREFIX,
    BaseChoice,
    BuildStatus,
    ImageBuildFailed,
    ImageResult,
)
from orchestrator.images.site_packages import SITE_ARCHIVE, DependencyTree, python_site_packages
from orchestrator.images.stale import Pruned, current_tags, remove_stale_images

__all__ = [
    "BASE_TAG",
    "BOOTSTRAP_COMMAND",
    "CHECKOUT_LABEL",
    "DEBIAN_MIRROR",
    "DEBIAN_SECURITY_MIRROR",
    "IMAGE_REPOSITORY",
    "LABEL_PREFIX",
    "POSTGRES_PGMQ",
    "SITE_ARCHIVE",
    "BaseChoice",
    "BaseImage",
    "BaseResolver",
    "BuildContext",
    "BuildProgress",
    "BuildStatus",
    "ContextSource",
    "DependencyTree",
    "ImageBuildFailed",
    "ImageRecipe",
    "ImageResult",
    "Pruned",
    "PullFailed",
    "bootstrap_base_image",
    "bootstrap_tool",
    "bootstrap_unavailable",
    "build_context",
    "build_images",
    "can_provide_images",
    "checkout_id",
    "current_tags",
    "default_cache_dir",
    "default_project_root",
    "docker_client",
    "image_inputs_hash",
    "image_tag",
    "postgres_pgmq_image",
    "pull_image",
    "python_site_packages",
    "remove_stale_images",
    "resolve_base_image",
    "source_tree",
    "tag_latest",
    "write_build_context",
]
