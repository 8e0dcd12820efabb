"""What an app profile says about one image: where its Dockerfile is, what else goes in.

An `ImageRecipe` names the image (`ci-stack/<name>:<hash>`), the folder holding its
Dockerfile (every file there is sent as it is), files made for the build (`generated`: called
with the cache folder, returns archive name -> bytes or path, e.g. an app's installed
dependencies from `python_site_packages` and its sources from `source_tree`) and build args.
The built-in PostgreSQL+PGMQ image is `postgres_pgmq_image()`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.images.hashing import ContextSource
from orchestrator.pgmq_extension import extension_files

GeneratedFiles = Callable[[Path], Mapping[str, ContextSource]]

POSTGRES_PGMQ = "postgres-pgmq"
_PACKAGE_DATA = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ImageRecipe:
    """One image to build: its name, its Dockerfile's folder, generated files, build args."""

    name: str
    directory: Path
    generated: GeneratedFiles | None = field(default=None, compare=False)
    buildargs: Mapping[str, str] = field(default_factory=dict)

    @property
    def dockerfile(self) -> Path:
        return self.directory / "Dockerfile"


def postgres_pgmq_image() -> ImageRecipe:
    """PostgreSQL 16 with PGMQ (the `pgmq` wheel's SQL), shipped in this package."""
    return ImageRecipe(POSTGRES_PGMQ, _PACKAGE_DATA / POSTGRES_PGMQ, _pgmq_files)


def _pgmq_files(_cache_dir: Path) -> dict[str, ContextSource]:
    return {f"pgmq/{name}": text.encode("utf-8") for name, text in extension_files().items()}


def source_tree(folder: Path, prefix: str) -> dict[str, Path]:
    """Every file under `folder` as `prefix/<relative path>`, without caches and bytecode."""
    files: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(
            part == "__pycache__" or part.endswith(".egg-info") or part.startswith(".")
            for part in relative.parts
        ):
            continue
        if path.is_file() and path.suffix not in (".pyc", ".pyo"):
            files[f"{prefix}/{relative.as_posix()}"] = path
    return files
