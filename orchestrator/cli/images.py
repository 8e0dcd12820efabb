"""`images bootstrap|build|prune|used|context ...`: the stack's images (`orchestrator.images`)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from orchestrator.arguments import EXIT_USAGE
from orchestrator.errors import OrchestratorError
from orchestrator.messages import tell

if TYPE_CHECKING:
    from orchestrator.images.recipe import ImageRecipe
    from orchestrator.images.results import ImageResult

__all__ = ["register"]

log = logging.getLogger("orchestrator.images")  # the package's logger: -v shows every module


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "images",
        help="base images and builds: bootstrap | build | prune | used | context",
        description="Build the app profile's images (cached by a hash of their inputs).",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="store_true", help="show the whole output, not a line per step"
    )
    common.add_argument(
        "--app",
        default=None,
        metavar="REF",
        help="the app profile whose images (default: STACK_APP or [tool.ci-stack] app)",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    boot = actions.add_parser(
        "bootstrap",
        parents=[common],
        help="make the offline Debian base with mmdebstrap or debootstrap (root)",
    )
    boot.add_argument("--tag", default=None, help="its tag (default: the offline base's)")
    boot.add_argument("--mirror", default=None, help="the Debian mirror (default: Debian's)")
    boot.add_argument("--force", action="store_true", help="rebuild even if the tag exists")
    boot.add_argument("--json", action="store_true", help="print the result as JSON")

    build = actions.add_parser(
        "build", parents=[common], help="build the images whose tag doesn't exist yet"
    )
    build.add_argument(
        "names", nargs="*", metavar="NAME", help="any of the profile's images (default: all)"
    )
    build.add_argument(
        "--base",
        type=_base_choice,
        default="auto",
        help="auto (default), public or offline: where the base image comes from",
    )
    build.add_argument("--force", action="store_true", help="rebuild without layer cache")
    build.add_argument("--json", action="store_true", help="print the results as JSON")
    build.add_argument(
        "--log", type=Path, default=None, metavar="FILE", help="append the whole build output here"
    )
    build.add_argument(
        "--offline-tag",
        default=None,
        metavar="TAG",
        help="the offline base to use or bootstrap (default: the offline base's tag)",
    )

    prune = actions.add_parser(
        "prune",
        parents=[common],
        help="remove this checkout's stale ci-stack/* tags and build stages",
    )
    prune.add_argument(
        "--all",
        action="store_true",
        help="also this checkout's current content-hash tags (rebuilt next run)",
    )

    used = actions.add_parser(
        "used",
        help="print the images a finished run used, one tag per line (what a CI cache keeps)",
    )
    used.add_argument("folder", type=Path, metavar="ARTIFACTS", help="the run's artifacts folder")

    ctx = actions.add_parser(
        "context", parents=[common], help="write an image's build context to a folder"
    )
    ctx.add_argument("name", help="one of the profile's images")
    ctx.add_argument("dest", type=Path)
    parser.set_defaults(handler=execute)


def _base_choice(raw: str) -> str:
    from orchestrator.images.results import BaseChoice

    if raw not in get_args(BaseChoice):
        choices = ", ".join(get_args(BaseChoice))
        raise argparse.ArgumentTypeError(f"unknown base {raw!r}; choose from {choices}")
    return raw


def execute(args: argparse.Namespace) -> int:
    if args.action == "used":  # reads a file: no Docker, no profile
        from orchestrator.images.used import images_used

        try:
            print("\n".join(images_used(args.folder)))
        except OrchestratorError as exc:
            tell(str(exc), "images used")
            return EXIT_USAGE
        return 0
    # The images machinery loads only for this command (docker-py, build contexts).
    from orchestrator.images.bootstrap import BASE_TAG, DEBIAN_MIRROR, bootstrap_base_image
    from orchestrator.images.build import build_images, tag_latest
    from orchestrator.images.client import client_scope
    from orchestrator.images.context import build_context, write_build_context
    from orchestrator.images.progress import BuildProgress
    from orchestrator.images.stale import remove_stale_images

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.verbose:
        log.setLevel(logging.DEBUG)
    try:
        if args.action == "bootstrap":
            with BuildProgress(verbose=args.verbose) as progress:
                result = bootstrap_base_image(
                    args.tag or BASE_TAG,
                    args.mirror or DEBIAN_MIRROR,
                    force=args.force,
                    progress=progress,
                )
            _print_results([result], as_json=args.json)
        elif args.action == "build":
            recipes = _chosen(_recipes(args.app), args.names)
            with BuildProgress(log_path=args.log, verbose=args.verbose) as progress:
                built = build_images(
                    recipes,
                    base=args.base,
                    force=args.force,
                    progress=progress,
                    offline_tag=args.offline_tag or BASE_TAG,
                )
            tag_latest(built)
            _print_results(list(built.values()), as_json=args.json)
        elif args.action == "prune":
            with client_scope(None) as client:
                pruned = remove_stale_images(
                    client,
                    keep_current=not args.all,
                    recipes=_recipes(args.app) if not args.all else (),
                )
            for removed in pruned.removed:
                print(f"removed {removed}")
            print(f"prune: {pruned.summary()}", file=sys.stderr)
        else:
            (recipe,) = _chosen(_recipes(args.app), [args.name])
            write_build_context(build_context(recipe), args.dest)
            print(f"docker build --network host {args.dest}")
    except UnknownImage as exc:
        tell(str(exc), "images")
        return EXIT_USAGE
    except (OrchestratorError, FileExistsError) as exc:
        tell(str(exc), "images")
        return 1
    return 0


class UnknownImage(ValueError):
    """An image name the app profile does not know (a usage error)."""


def _recipes(app: str | None) -> tuple[ImageRecipe, ...]:
    """The image recipes of the app profile named by `app`, else the configured one."""
    from orchestrator.config import OrchestratorConfig
    from orchestrator.profile import load_profile

    config = OrchestratorConfig.load({"app": app})
    return tuple(load_profile(config.app, config.root).images())


def _chosen(recipes: Sequence[ImageRecipe], names: Sequence[str]) -> tuple[ImageRecipe, ...]:
    by_name = {recipe.name: recipe for recipe in recipes}
    unknown = sorted(set(names) - set(by_name))
    if unknown:
        choices = ", ".join(by_name) or "none: the app profile names no images"
        raise UnknownImage(f"unknown image {', '.join(unknown)}; the app profile's: {choices}")
    return tuple(by_name[name] for name in names) if names else tuple(recipes)


def _print_results(results: Sequence[ImageResult], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps([dataclasses.asdict(result) for result in results], indent=2))
        return
    for result in results:
        print(
            f"{result.name:<14} {result.status:<6} {result.seconds:7.1f}s "
            f"{result.size_bytes / 1e6:7.0f} MB  {result.tag}  {result.image_id}"
        )
