"""Build contexts: a recipe's folder (its Dockerfile and whatever lies beside it) plus the
files the recipe generates (e.g. PGMQ's files, an app's installed dependencies, its sources)."""

from __future__ import annotations

import io
import re
import shutil
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from orchestrator.errors import PrerequisiteMissing
from orchestrator.images.hashing import FIXED_MTIME, ContextSource, file_mode
from orchestrator.images.paths import default_cache_dir
from orchestrator.images.recipe import ImageRecipe


@dataclass(frozen=True)
class BuildContext:
    """Everything `docker build` receives for one image: archive name -> content."""

    name: str
    files: Mapping[str, ContextSource]
    default_base: str  # the Dockerfile's `ARG BASE_IMAGE=` default


def build_context(recipe: ImageRecipe, *, cache_dir: Path | None = None) -> BuildContext:
    """The files of the recipe's folder plus its generated ones; a folder on disk that a
    generated file lives in (e.g. left by `images context`) is never read."""
    dockerfile = read_dockerfile(recipe)
    generated = dict(recipe.generated(cache_dir or default_cache_dir())) if recipe.generated else {}
    made_here = {name.split("/", 1)[0] for name in generated if "/" in name}
    files: dict[str, ContextSource] = {
        name: path
        for name, path in _directory_files(recipe.directory).items()
        if name.split("/", 1)[0] not in made_here
    }
    files.update(generated)
    return BuildContext(
        name=recipe.name, files=files, default_base=dockerfile_default_base(dockerfile)
    )


def read_dockerfile(recipe: ImageRecipe) -> str:
    if not recipe.dockerfile.is_file():
        raise PrerequisiteMissing(
            f"image {recipe.name}: {recipe.dockerfile} does not exist",
            "restore it, or point the app profile's image recipe at the folder holding it",
        )
    return recipe.dockerfile.read_text(encoding="utf-8")


def write_build_context(context: BuildContext, dest: Path) -> None:
    """Write a context out as a folder, for a manual `docker build DEST` (or compose)."""
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} is not empty; give a new or empty folder")
    for name, source in sorted(context.files.items()):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, bytes):
            target.write_bytes(source)
        else:
            shutil.copyfile(source, target)
        target.chmod(file_mode(name))


def _directory_files(directory: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if "__pycache__" in relative.parts:
            continue
        if path.is_file():
            files[relative.as_posix()] = path
    return files


def dockerfile_default_base(dockerfile: str) -> str:
    match = re.search(r"^\s*ARG\s+BASE_IMAGE=(\S+)\s*$", dockerfile, re.MULTILINE)
    if not match:
        raise PrerequisiteMissing(
            "the Dockerfile declares no `ARG BASE_IMAGE=<default>`",
            "declare it before the first FROM, e.g. ARG BASE_IMAGE=python:3.11-slim-bookworm",
        )
    return match.group(1)


def write_context_tar(files: Mapping[str, ContextSource], fileobj: IO[bytes]) -> None:
    with tarfile.open(fileobj=fileobj, mode="w") as tar:
        for name in sorted(files):
            source = files[name]
            info = tarfile.TarInfo(name)
            info.mode = file_mode(name)
            info.mtime = FIXED_MTIME
            if isinstance(source, bytes):
                info.size = len(source)
                tar.addfile(info, io.BytesIO(source))
            else:
                info.size = source.stat().st_size
                with source.open("rb") as handle:
                    tar.addfile(info, handle)
