"""Build contexts: `images/<name>/` plus generated files (PGMQ's files, or the backend's
installed dependencies and its package's sources)."""

from __future__ import annotations

import io
import re
import shutil
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from orchestrator.errors import PrerequisiteMissing
from orchestrator.images.hashing import FIXED_MTIME, ContextSource, file_mode
from orchestrator.images.paths import default_repo_root
from orchestrator.images.results import ImageName
from orchestrator.images.wheels import SITE_ARCHIVE, prepare_dependencies, project_source_files
from orchestrator.pgmq_extension import extension_files

_GENERATED_DIRS: dict[ImageName, tuple[str, ...]] = {
    # Folders of the image directory that this module fills; never read from disk.
    "postgres-pgmq": ("pgmq",),
    "backend": ("deps", "project"),
}
# The packages of the project that an image runs (the orchestrator shares the distribution
# but never runs in the image: a change to it does not rebuild the image).
_PROJECT_PACKAGES: dict[ImageName, tuple[str, ...]] = {"backend": ("backend",)}


@dataclass(frozen=True)
class BuildContext:
    """Everything `docker build` receives for one image: archive name -> content."""

    name: ImageName
    files: Mapping[str, ContextSource]
    default_base: str  # the Dockerfile's `ARG BASE_IMAGE=` default


def build_context(
    name: ImageName, *, repo_root: Path | None = None, cache_dir: Path | None = None
) -> BuildContext:
    """The files of `images/<name>/` plus the generated ones (PGMQ files, or the installed
    dependencies as `deps/site-packages.tar.gz` and the package sources under `project/`)."""
    root = repo_root or default_repo_root()
    directory = root / "images" / name
    if not (directory / "Dockerfile").is_file():
        raise PrerequisiteMissing(
            f"{directory / 'Dockerfile'} does not exist", "restore images/ from the repository"
        )
    files: dict[str, ContextSource] = dict(_directory_files(directory, _GENERATED_DIRS[name]))
    if name == "postgres-pgmq":
        for file_name, text in extension_files().items():
            files[f"pgmq/{file_name}"] = text.encode("utf-8")
    else:
        files[f"deps/{SITE_ARCHIVE}"] = prepare_dependencies(
            repo_root=root, cache_dir=cache_dir
        ).archive
        packages = _PROJECT_PACKAGES[name]
        for relative, path in project_source_files(root).items():
            if relative.split("/", 1)[0] in packages:
                files[f"project/{relative}"] = path
    dockerfile = (directory / "Dockerfile").read_text(encoding="utf-8")
    return BuildContext(name=name, files=files, default_base=dockerfile_default_base(dockerfile))


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


def _directory_files(directory: Path, generated: Sequence[str]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if relative.parts[0] in generated or "__pycache__" in relative.parts:
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
