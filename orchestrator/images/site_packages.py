"""An image's Python dependencies, installed and byte-compiled on the host, as one archive.

Containers here can't reach PyPI over HTTPS, and an install inside the image costs a pip
(a venv with ensurepip) and its resolver on every build. So the host installs the
dependencies once (`uv pip install --target`, else pip) into a folder, byte-compiles it
(hash-checked .pyc: valid whatever the files' times in the image), and packs it as a
reproducible `site-packages.tar.gz`, cached under a key of what it is made from; the image
only unpacks it (`ADD`). An app profile puts it in an image's build context (see
`ImageRecipe.generated`).
"""

from __future__ import annotations

import gzip
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from orchestrator.errors import PrerequisiteMissing
from orchestrator.images.hashing import FIXED_MTIME, cache_key
from orchestrator.images.paths import default_cache_dir
from orchestrator.images.results import SUBPROCESS_TIMEOUT_S, TAIL_LINES, ImageBuildFailed

log = logging.getLogger(__name__)

_IMAGE_PYTHON = (3, 11)  # what Debian bookworm's python3 runs: the tree must be built for it
SITE_ARCHIVE = "site-packages.tar.gz"


@dataclass(frozen=True)
class DependencyTree:
    """Third-party dependencies, installed: one archive of site-packages."""

    archive: Path
    cached: bool


def python_site_packages(
    requirements: Sequence[str], *, image: str, cache_dir: Path | None = None
) -> DependencyTree:
    """Install (or reuse) `requirements` as one archive of site-packages for `image`.

    Keyed by the requirements and the versions installed in this environment (used as
    constraints, so the image runs what the tests were run with; the distributions named in
    `requirements` come from there too): rebuilt only when the key changes.
    """
    if sys.version_info[:2] != _IMAGE_PYTHON:
        wanted = ".".join(map(str, _IMAGE_PYTHON))
        raise PrerequisiteMissing(
            f"the {image} image runs Python {wanted} but this is Python "
            f"{sys.version_info.major}.{sys.version_info.minor}: its compiled packages won't fit",
            f"run the orchestrator from a Python {wanted} virtualenv",
        )
    cache = (cache_dir or default_cache_dir()) / "site"
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # e.g. a service user whose home is /nonexistent
        raise PrerequisiteMissing(
            f"cannot create the image cache {cache} ({exc.strerror})",
            "set CI_STACK_CACHE_DIR (or XDG_CACHE_HOME, or HOME) to a folder you can write",
        ) from exc
    python_tag = f"cp{_IMAGE_PYTHON[0]}{_IMAGE_PYTHON[1]}"

    requirements = [str(requirement) for requirement in requirements]
    constraints = _installed_pins()
    key = cache_key(
        {
            "layout": "site-packages/1",
            "python": python_tag,
            "platform": sysconfig.get_platform(),
            "requirements": requirements,
            "constraints": constraints,
        }
    )

    def make(out: Path, scratch: Path) -> None:
        constraints_file = scratch / "constraints.txt"
        constraints_file.write_text("\n".join(constraints) + "\n", encoding="utf-8")
        site = scratch / "site"
        _run(
            [
                *_installer(),
                *("--target", str(site)),
                *("--constraint", str(constraints_file)),
                *requirements,
            ],
            what=f"install the {image} image's dependencies",
            image=image,
        )
        shutil.rmtree(site / "bin", ignore_errors=True)  # scripts with this host's shebangs
        (site / ".lock").unlink(missing_ok=True)  # uv's, for the folder it installed into
        _byte_compile(site)
        _pack(site, out / SITE_ARCHIVE)

    folder, cached = _cached_dir(cache / f"site-{key}", make)
    _prune(cache, "site-", keep=2)
    return DependencyTree(archive=folder / SITE_ARCHIVE, cached=cached)


def _installer() -> list[str]:
    """`uv pip install` (fast) when uv is here, else this interpreter's pip."""
    uv = shutil.which("uv")
    if uv is not None:
        return [uv, "pip", "install", "--quiet", "--python", sys.executable]
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip", "--disable-pip-version-check", "install", "-q"]
    raise PrerequisiteMissing(
        "neither uv nor pip is here to install an image's dependencies",
        f"install one: `{sys.executable} -m ensurepip` or `pip install uv`",
    )


def _byte_compile(site: Path) -> None:
    """Hash-checked .pyc for every module: containers import without compiling (they may
    not write .pyc), and the files' times in the image don't matter."""
    result = subprocess.run(
        [
            sys.executable, "-m", "compileall", "-q", "-j0",
            "--invalidation-mode", "unchecked-hash", str(site),
        ],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
    )  # fmt: skip
    if result.returncode != 0:  # a module for another Python version: it is never imported
        log.debug("compileall: %s", (result.stdout + result.stderr)[-2000:])


def _pack(site: Path, archive: Path) -> None:
    """A reproducible .tar.gz of `site`: sorted names, fixed times and owners, mode from the
    file (executable or not), gzip without a timestamp. Same tree, same bytes."""

    def normalized(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.mtime = FIXED_MTIME
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        executable = info.isdir() or info.mode & 0o100
        info.mode = 0o755 if executable else 0o644
        return info

    with (
        open(archive, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in sorted(site.rglob("*")):
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                continue
            tar.add(path, arcname=path.relative_to(site).as_posix(), recursive=False,
                    filter=normalized)  # fmt: skip


def _canonical_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed_pins() -> list[str]:
    pins: dict[str, str] = {}
    for dist in metadata.distributions():
        raw_name = dist.metadata["Name"]
        if not raw_name:
            continue
        name = _canonical_name(raw_name)
        if name not in pins and dist.read_text("direct_url.json") is None:
            pins[name] = f"{name}=={dist.version}"
    return sorted(pins.values())


def _cached_dir(final: Path, make: Callable[[Path, Path], None]) -> tuple[Path, bool]:
    """`final` if it exists, else made by `make(out, scratch)` and renamed into place."""
    if final.is_dir():
        os.utime(final)  # most recently used: kept by _prune
        return final, True
    scratch = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        out = scratch / "out"
        out.mkdir()
        make(out, scratch)
        try:
            out.rename(final)
        except OSError:
            if not final.is_dir():  # else another process made it first: theirs is as good
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return final, False


def _prune(directory: Path, prefix: str, *, keep: int) -> None:
    entries = sorted(
        (path for path in directory.glob(f"{prefix}*") if path.is_dir()),
        key=lambda path: path.stat().st_mtime,
        reverse=True,
    )
    stale_scratch = [
        path
        for path in directory.glob(f".{prefix}*")
        if time.time() - path.stat().st_mtime > 3600  # left by a killed run
    ]
    for path in entries[keep:] + stale_scratch:
        log.debug("removing old wheel cache %s", path)
        shutil.rmtree(path, ignore_errors=True)


def _run(command: list[str], *, what: str, image: str) -> None:
    log.info("building an image's dependencies: %s", what)
    log.debug("running %s", " ".join(command))
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ImageBuildFailed(
            image, f"{command[0]} took over {SUBPROCESS_TIMEOUT_S}s to {what}", []
        ) from exc
    for line in result.stdout.splitlines():
        log.debug("%s: %s", Path(command[0]).name, line)
    if result.returncode != 0:
        lines = (result.stdout + result.stderr).splitlines()
        raise ImageBuildFailed(
            image,
            f"could not {what} (`{' '.join(command[:4])} ...` exited {result.returncode})",
            lines[-TAIL_LINES:],
            hint="the dependencies are installed on this host with its uv/pip configuration; "
            "check that `pip download <package>` works here",
        )
