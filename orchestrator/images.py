"""Build the stack's Docker images, offline-capable and cached by a hash of their inputs.

Two images, `ci-stack/postgres-pgmq:<hash>` and `ci-stack/backend:<hash>`, built from
`images/<name>/Dockerfile`. Their `BASE_IMAGE` is the Dockerfile's public default when that
image is in the local store, else the Debian base that `bootstrap_base_image()` makes with
debootstrap + `docker import` for machines without a registry. The tag is a content hash of
everything the build sees (context files, base image id, build args): a tag that exists is a
build that needs no doing.

The build context is assembled here, not read from the folder alone: PGMQ's extension files
come from the `pgmq` wheel, and the backend's wheels are built on the host (containers here
can't reach PyPI over HTTPS) into a cache keyed by what they are made from.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import io
import json
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
import tomllib
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, get_args

from orchestrator.errors import OrchestratorError, PrerequisiteMissing
from orchestrator.pgmq_extension import extension_files

if TYPE_CHECKING:
    from docker import DockerClient

log = logging.getLogger(__name__)

ImageName = Literal["postgres-pgmq", "backend"]
IMAGE_NAMES: tuple[ImageName, ...] = get_args(ImageName)
BaseChoice = Literal["auto", "public", "offline"]
BuildStatus = Literal["built", "cached"]

BASE_TAG = "ci-stack/debian-base:bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
IMAGE_REPOSITORY = "ci-stack"
LABEL_PREFIX = "ci-stack"
BOOTSTRAP_COMMAND = "python -m orchestrator images bootstrap"

ContextSource = bytes | Path

_HASH_SCHEME = "ci-stack-image-inputs/1"
_TAG_HASH_LENGTH = 16
_IMAGE_PYTHON = (3, 11)  # what both backend bases run: wheels must be built for it
_FIXED_MTIME = 315532800  # 1980-01-01, for tar headers and wheel timestamps: stable bytes
_GENERATED_DIRS: dict[ImageName, tuple[str, ...]] = {
    # Folders of the image directory that this module fills; never read from disk.
    "postgres-pgmq": ("pgmq",),
    "backend": ("wheels",),
}
_PROJECT_META_FILES = ("pyproject.toml", "setup.py", "setup.cfg", "MANIFEST.in")
_SUBPROCESS_TIMEOUT_S = 1200
_TAIL_LINES = 40


class ImageBuildFailed(OrchestratorError):
    """Building an image (or what goes into it) failed; carries the tail of the output."""

    def __init__(self, image: str, reason: str, tail: Sequence[str], hint: str = "") -> None:
        super().__init__(image, reason)
        self.image = image
        self.reason = reason
        self.tail = list(tail)
        self.hint = hint

    def __str__(self) -> str:
        text = f"building {self.image} failed: {self.reason}"
        if self.tail:
            text += "\n--- last output lines ---\n" + "\n".join(self.tail)
        if self.hint:
            text += f"\nHint: {self.hint}"
        return text


@dataclass(frozen=True)
class ImageResult:
    """What happened to one image; `dataclasses.asdict()` of it fits stack.json."""

    name: str
    tag: str
    image_id: str
    status: BuildStatus
    seconds: float
    size_bytes: int
    base_image: str | None = None  # the BASE_IMAGE it was built FROM; None for the base
    inputs_hash: str | None = None


@dataclass(frozen=True)
class WheelSet:
    """The backend's wheels: third-party dependencies and the project's own wheel."""

    deps: tuple[Path, ...]
    project: Path
    deps_cached: bool
    project_cached: bool


@dataclass(frozen=True)
class BuildContext:
    """Everything `docker build` receives for one image: archive name -> content."""

    name: ImageName
    files: Mapping[str, ContextSource]
    default_base: str  # the Dockerfile's `ARG BASE_IMAGE=` default


# --- hashing -------------------------------------------------------------------------------


def image_inputs_hash(
    files: Mapping[str, ContextSource], *, base_image_id: str, buildargs: Mapping[str, str]
) -> str:
    """Hex SHA-256 over a build's inputs: context files, the base image's id, build args.

    File modes are derived from names (see `_file_mode`), so names and contents suffice.
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
        put("file", name, _content_digest(files[name]))
    return digest.hexdigest()


def image_tag(name: ImageName, inputs_hash: str) -> str:
    """`ci-stack/<name>:<first 16 hex digits of the inputs hash>`."""
    return f"{IMAGE_REPOSITORY}/{name}:{inputs_hash[:_TAG_HASH_LENGTH]}"


def _content_digest(source: ContextSource) -> str:
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest()
    with source.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _key(payload: object) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_TAG_HASH_LENGTH]


def _file_mode(name: str) -> int:
    return 0o755 if name.endswith(".sh") else 0o644


# --- build contexts ------------------------------------------------------------------------


def default_repo_root() -> Path:
    """The checkout this module belongs to (it holds `images/`)."""
    root = Path(__file__).resolve().parents[1]
    if not (root / "images").is_dir():
        raise PrerequisiteMissing(
            f"no images/ folder next to the orchestrator package ({root})",
            "run from a checkout of the project (pip install -e .), or pass repo_root",
        )
    return root


def default_cache_dir() -> Path:
    """Where built wheels are kept: $CI_STACK_CACHE_DIR, else ~/.cache/ci-stack."""
    configured = os.environ.get("CI_STACK_CACHE_DIR")
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "ci-stack"


def build_context(
    name: ImageName, *, repo_root: Path | None = None, cache_dir: Path | None = None
) -> BuildContext:
    """The files of `images/<name>/` plus the generated ones (PGMQ files or wheels)."""
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
        wheels = prepare_wheels(repo_root=root, cache_dir=cache_dir)
        for wheel in wheels.deps:
            files[f"wheels/deps/{wheel.name}"] = wheel
        files[f"wheels/project/{wheels.project.name}"] = wheels.project
    dockerfile = (directory / "Dockerfile").read_text(encoding="utf-8")
    return BuildContext(name=name, files=files, default_base=_default_base(dockerfile))


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
        target.chmod(_file_mode(name))


def _directory_files(directory: Path, generated: Sequence[str]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if relative.parts[0] in generated or "__pycache__" in relative.parts:
            continue
        if path.is_file():
            files[relative.as_posix()] = path
    return files


def _default_base(dockerfile: str) -> str:
    match = re.search(r"^\s*ARG\s+BASE_IMAGE=(\S+)\s*$", dockerfile, re.MULTILINE)
    if not match:
        raise PrerequisiteMissing(
            "the Dockerfile declares no `ARG BASE_IMAGE=<default>`",
            "declare it before the first FROM, e.g. ARG BASE_IMAGE=python:3.11-slim-bookworm",
        )
    return match.group(1)


def _write_tar(files: Mapping[str, ContextSource], fileobj: IO[bytes]) -> None:
    with tarfile.open(fileobj=fileobj, mode="w") as tar:
        for name in sorted(files):
            source = files[name]
            info = tarfile.TarInfo(name)
            info.mode = _file_mode(name)
            info.mtime = _FIXED_MTIME
            if isinstance(source, bytes):
                info.size = len(source)
                tar.addfile(info, io.BytesIO(source))
            else:
                info.size = source.stat().st_size
                with source.open("rb") as handle:
                    tar.addfile(info, handle)


# --- wheels for the backend image ----------------------------------------------------------


def project_source_files(repo_root: Path) -> dict[str, Path]:
    """The files the project's wheel is built from: packaging metadata and package trees."""
    pyproject = _read_pyproject(repo_root)
    files: dict[str, Path] = {}
    readme = pyproject.get("project", {}).get("readme")
    meta_names = [*_PROJECT_META_FILES, *([readme] if isinstance(readme, str) else [])]
    for meta_name in meta_names:
        if (repo_root / meta_name).is_file():
            files[meta_name] = repo_root / meta_name
    for package in _top_level_packages(pyproject):
        for path in sorted((repo_root / package).rglob("*")):
            relative = path.relative_to(repo_root)
            if any(
                part == "__pycache__" or part.endswith(".egg-info") or part.startswith(".")
                for part in relative.parts
            ):
                continue
            if path.is_file() and path.suffix not in (".pyc", ".pyo"):
                files[relative.as_posix()] = path
    return files


def prepare_wheels(*, repo_root: Path | None = None, cache_dir: Path | None = None) -> WheelSet:
    """Build (or reuse) the backend's wheels on the host.

    Third-party wheels are keyed by the project's dependency list and the versions installed
    in this environment (used as constraints, so the image runs what the tests were run
    with); the project's wheel by the content of its source files. Either is rebuilt only
    when its key changes.
    """
    if sys.version_info[:2] != _IMAGE_PYTHON:
        wanted = ".".join(map(str, _IMAGE_PYTHON))
        raise PrerequisiteMissing(
            f"the backend image runs Python {wanted} but this is Python "
            f"{sys.version_info.major}.{sys.version_info.minor}: its compiled wheels won't fit",
            f"run the orchestrator from a Python {wanted} virtualenv",
        )
    root = repo_root or default_repo_root()
    wheel_dir = (cache_dir or default_cache_dir()) / "wheels"
    wheel_dir.mkdir(parents=True, exist_ok=True)
    python_tag = f"cp{_IMAGE_PYTHON[0]}{_IMAGE_PYTHON[1]}"

    project = _read_pyproject(root).get("project", {})
    requirements = [str(requirement) for requirement in project.get("dependencies", [])]
    project_name = str(project.get("name", ""))
    constraints = _installed_pins(exclude=_canonical_name(project_name))
    deps_key = _key(
        {
            "python": python_tag,
            "platform": sysconfig.get_platform(),
            "requirements": requirements,
            "constraints": constraints,
        }
    )

    def make_deps(out: Path, scratch: Path) -> None:
        constraints_file = scratch / "constraints.txt"
        constraints_file.write_text("\n".join(constraints) + "\n", encoding="utf-8")
        _run_pip(
            [
                "wheel",
                *("--wheel-dir", str(out)),
                *("--constraint", str(constraints_file)),
                *requirements,
            ],
            what="the backend's dependencies",
        )

    deps_dir, deps_cached = _cached_dir(wheel_dir / f"deps-{deps_key}", make_deps)

    sources = project_source_files(root)
    project_key = _key(
        {"python": python_tag, "sources": {n: _content_digest(p) for n, p in sources.items()}}
    )

    def make_project(out: Path, scratch: Path) -> None:
        source_root = scratch / "src"
        for relative, path in sources.items():
            (source_root / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, source_root / relative)
        _run_pip(
            ["wheel", "--no-deps", "--wheel-dir", str(out), str(source_root)],
            what="the project's own wheel",
            env={"SOURCE_DATE_EPOCH": str(_FIXED_MTIME)},
        )

    project_dir, project_cached = _cached_dir(wheel_dir / f"project-{project_key}", make_project)
    _prune(wheel_dir, "deps-", keep=2)
    _prune(wheel_dir, "project-", keep=3)

    project_wheels = sorted(project_dir.glob("*.whl"))
    if len(project_wheels) != 1:
        raise ImageBuildFailed(
            "backend",
            f"expected one project wheel in {project_dir}, found {len(project_wheels)}",
            [],
            hint=f"delete {project_dir} and build again",
        )
    return WheelSet(
        deps=tuple(sorted(deps_dir.glob("*.whl"))),
        project=project_wheels[0],
        deps_cached=deps_cached,
        project_cached=project_cached,
    )


def _read_pyproject(repo_root: Path) -> dict[str, Any]:
    with (repo_root / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)


def _top_level_packages(pyproject: Mapping[str, Any]) -> list[str]:
    find = pyproject.get("tool", {}).get("setuptools", {}).get("packages", {}).get("find", {})
    names = {str(pattern).split(".")[0].rstrip("*") for pattern in find.get("include", [])}
    if not names:
        raise PrerequisiteMissing(
            "pyproject.toml lists no packages under [tool.setuptools.packages.find] include",
            'list them, e.g. include = ["backend*", "orchestrator*"]',
        )
    return sorted(name for name in names if name)


def _canonical_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed_pins(*, exclude: str) -> list[str]:
    pins: dict[str, str] = {}
    for dist in metadata.distributions():
        raw_name = dist.metadata["Name"]
        if not raw_name:
            continue
        name = _canonical_name(raw_name)
        if name != exclude and name not in pins:
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


def _run_pip(args: list[str], *, what: str, env: Mapping[str, str] | None = None) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    log.info("building wheels: %s", what)
    log.debug("running %s", " ".join(command))
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            timeout=_SUBPROCESS_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ImageBuildFailed(
            "backend", f"pip took over {_SUBPROCESS_TIMEOUT_S}s for {what}", []
        ) from exc
    for line in result.stdout.splitlines():
        log.debug("pip: %s", line)
    if result.returncode != 0:
        lines = (result.stdout + result.stderr).splitlines()
        raise ImageBuildFailed(
            "backend",
            f"pip could not build the wheels of {what} (exit {result.returncode})",
            lines[-_TAIL_LINES:],
            hint="the wheels are built on this host with its pip configuration; check that "
            "`pip download <package>` works here",
        )


# --- Docker --------------------------------------------------------------------------------


def docker_client(timeout: int = 600) -> DockerClient:
    """A docker-py client for the environment's daemon, checked with a ping."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except DockerException as exc:
        raise PrerequisiteMissing(
            f"no Docker daemon answers ({exc})",
            "start one (`nohup dockerd >/var/log/dockerd.log 2>&1 &`, then wait for "
            "`docker info`), or point DOCKER_HOST at one",
        ) from exc
    return client


@contextlib.contextmanager
def _client_scope(client: DockerClient | None) -> Iterator[DockerClient]:
    if client is not None:
        yield client
        return
    own = docker_client()
    try:
        yield own
    finally:
        own.close()


def _local_image(client: DockerClient, ref: str) -> tuple[str, int] | None:
    from docker.errors import ImageNotFound

    try:
        image = client.images.get(ref)
    except ImageNotFound:
        return None
    return str(image.id), int(image.attrs.get("Size", 0))


def resolve_base_image(
    client: DockerClient,
    name: ImageName,
    base: BaseChoice = "auto",
    *,
    repo_root: Path | None = None,
) -> tuple[str, str]:
    """`(reference, image id)` of the base to build `name` FROM; nothing is pulled.

    `auto`: the Dockerfile's public default if it is in the local store, else the
    bootstrapped Debian base. `public` / `offline`: only that one.
    """
    root = repo_root or default_repo_root()
    default_base = _default_base((root / "images" / name / "Dockerfile").read_text("utf-8"))
    candidates = {
        "auto": [default_base, BASE_TAG],
        "public": [default_base],
        "offline": [BASE_TAG],
    }[base]
    for ref in candidates:
        found = _local_image(client, ref)
        if found:
            return ref, found[0]
    if base == "public":
        fix = f"`docker pull {default_base}` where a registry is reachable, or use base auto"
    else:
        fix = f"run `{BOOTSTRAP_COMMAND}` (debootstrap, ~30 s) to make {BASE_TAG}"
    raise PrerequisiteMissing(
        f"no base image for a build FROM {' or '.join(candidates)}: none is in the local "
        "Docker image store, and nothing is pulled",
        fix,
    )


def build_images(
    names: Sequence[ImageName] = IMAGE_NAMES,
    *,
    base: BaseChoice = "auto",
    force: bool = False,
    repo_root: Path | None = None,
    cache_dir: Path | None = None,
    client: DockerClient | None = None,
) -> dict[ImageName, ImageResult]:
    """Build each image unless its content-hash tag exists already; report what happened.

    `force` builds again without Docker's layer cache (e.g. to pick up newer apt packages).
    """
    results: dict[ImageName, ImageResult] = {}
    with _client_scope(client) as docker_api:
        for name in names:
            results[name] = _build_one(
                docker_api, name, base=base, force=force, repo_root=repo_root, cache_dir=cache_dir
            )
    return results


def tag_latest(
    results: Mapping[ImageName, ImageResult], *, client: DockerClient | None = None
) -> list[str]:
    """Also tag each image `<repository>:latest` (what compose.yaml runs); returns the tags.

    Only for humans and compose: the providers use the content-hash tags, so concurrent runs
    of different checkouts never share an image by accident.
    """
    tags: list[str] = []
    with _client_scope(client) as docker_api:
        for result in results.values():
            repository = result.tag.rpartition(":")[0]
            docker_api.api.tag(result.image_id, repository, "latest", force=True)
            tags.append(f"{repository}:latest")
            log.info("tagged %s as %s:latest", result.tag, repository)
    return tags


def _build_one(
    client: DockerClient,
    name: ImageName,
    *,
    base: BaseChoice,
    force: bool,
    repo_root: Path | None,
    cache_dir: Path | None,
) -> ImageResult:
    started = time.monotonic()
    root = repo_root or default_repo_root()
    base_ref, base_id = resolve_base_image(client, name, base, repo_root=root)
    context = build_context(name, repo_root=root, cache_dir=cache_dir)
    buildargs = {"BASE_IMAGE": base_ref}
    inputs_hash = image_inputs_hash(context.files, base_image_id=base_id, buildargs=buildargs)
    tag = image_tag(name, inputs_hash)

    existing = None if force else _local_image(client, tag)
    status: BuildStatus = "cached"
    if existing is None:
        log.info("building %s FROM %s", tag, base_ref)
        labels = {
            f"{LABEL_PREFIX}.image": name,
            f"{LABEL_PREFIX}.inputs-hash": inputs_hash,
            f"{LABEL_PREFIX}.base-image": base_ref,
        }
        _docker_build(client, context, tag, buildargs, labels, nocache=force)
        existing = _local_image(client, tag)
        status = "built"
    if existing is None:
        raise ImageBuildFailed(tag, "the build finished but the tag is not in the store", [])
    image_id, size = existing
    result = ImageResult(
        name=name,
        tag=tag,
        image_id=image_id,
        status=status,
        seconds=round(time.monotonic() - started, 3),
        size_bytes=size,
        base_image=base_ref,
        inputs_hash=inputs_hash,
    )
    log.info("%s %s in %.1fs", tag, status, result.seconds)
    return result


def _docker_build(
    client: DockerClient,
    context: BuildContext,
    tag: str,
    buildargs: Mapping[str, str],
    labels: Mapping[str, str],
    *,
    nocache: bool,
) -> None:
    from docker.errors import APIError

    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    hint = (
        "apt needs Debian's mirror over HTTP from the build (--network host is used); "
        "rerun with -v for the whole build log"
    )
    with tempfile.TemporaryFile(prefix="ci-stack-context-") as archive:
        _write_tar(context.files, archive)
        archive.seek(0)
        try:
            stream = client.api.build(
                fileobj=archive,
                custom_context=True,
                tag=tag,
                buildargs=dict(buildargs),
                labels=dict(labels),
                network_mode="host",
                rm=True,
                forcerm=True,
                nocache=nocache,
                pull=False,
                decode=True,
            )
            for chunk in stream:
                for line in str(chunk.get("stream", "")).splitlines():
                    if line.strip():
                        tail.append(line)
                        log.debug("%s | %s", context.name, line)
                if "error" in chunk:
                    raise ImageBuildFailed(tag, str(chunk["error"]).strip(), list(tail), hint)
        except APIError as exc:
            raise ImageBuildFailed(tag, f"Docker refused the build: {exc}", list(tail)) from exc


# --- offline base image --------------------------------------------------------------------


def bootstrap_base_image(
    tag: str = BASE_TAG,
    mirror: str = DEBIAN_MIRROR,
    *,
    suite: str = "bookworm",
    security_mirror: str | None = DEBIAN_SECURITY_MIRROR,
    force: bool = False,
    client: DockerClient | None = None,
) -> ImageResult:
    """Make `tag` from `debootstrap --variant=minbase` + `docker import`, unless it exists.

    The image's apt sources are `<suite>`, `<suite>-updates` and (unless `security_mirror`
    is None) `<suite>-security`, over HTTP, which builds can reach with --network host.
    """
    started = time.monotonic()
    with _client_scope(client) as docker_api:
        existing = None if force else _local_image(docker_api, tag)
        status: BuildStatus = "cached"
        if existing is None:
            _require_debootstrap()
            with _scratch_dir("ci-stack-debootstrap-") as work:
                rootfs = work / "rootfs"
                log.info("debootstrap --variant=minbase %s from %s", suite, mirror)
                _debootstrap(tag, suite, rootfs, mirror)
                _configure_apt(rootfs, suite, mirror, security_mirror)
                log.info("importing %s", tag)
                _import_rootfs(docker_api, rootfs, tag, suite=suite, mirror=mirror)
            existing = _local_image(docker_api, tag)
            status = "built"
        if existing is None:
            raise ImageBuildFailed(tag, "docker import finished but the tag is not there", [])
    image_id, size = existing
    return ImageResult(
        name="debian-base",
        tag=tag,
        image_id=image_id,
        status=status,
        seconds=round(time.monotonic() - started, 3),
        size_bytes=size,
    )


def _require_debootstrap() -> None:
    if shutil.which("debootstrap") is None:
        raise PrerequisiteMissing(
            "debootstrap is not installed", "apt-get install -y debootstrap (as root)"
        )
    if os.geteuid() != 0:
        raise PrerequisiteMissing(
            "debootstrap needs root (it creates device nodes and chroots)",
            f"run `sudo {BOOTSTRAP_COMMAND}` (with this virtualenv's python)",
        )


def _debootstrap(tag: str, suite: str, rootfs: Path, mirror: str) -> None:
    command = ["debootstrap", "--variant=minbase", suite, str(rootfs), mirror]
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=_SUBPROCESS_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ImageBuildFailed(
            tag, f"debootstrap took over {_SUBPROCESS_TIMEOUT_S}s", [], hint=f"is {mirror} slow?"
        ) from exc
    for line in result.stdout.splitlines():
        log.debug("debootstrap: %s", line)
    if result.returncode != 0:
        lines = (result.stdout + result.stderr).splitlines()
        log_file = rootfs / "debootstrap" / "debootstrap.log"
        if log_file.is_file():
            lines += log_file.read_text(errors="replace").splitlines()
        raise ImageBuildFailed(
            tag,
            f"debootstrap exited with {result.returncode}",
            lines[-_TAIL_LINES:],
            hint=f"check that {mirror} answers over HTTP from this machine",
        )


def _configure_apt(rootfs: Path, suite: str, mirror: str, security: str | None) -> None:
    """Sources over HTTP; lean installs (no recommends, translations, docs or man pages)."""
    lines = [f"deb {mirror} {suite} main", f"deb {mirror} {suite}-updates main"]
    if security:
        lines.append(f"deb {security} {suite}-security main")
    (rootfs / "etc/apt/sources.list").write_text("\n".join(lines) + "\n")
    (rootfs / "etc/apt/apt.conf.d/90ci-stack").write_text(
        'Acquire::Languages "none";\n'
        'APT::Install-Recommends "false";\n'
        'APT::Install-Suggests "false";\n'
    )
    (rootfs / "etc/dpkg/dpkg.cfg.d/90ci-stack-nodoc").write_text(
        "path-exclude /usr/share/doc/*\n"
        "path-include /usr/share/doc/*/copyright\n"
        "path-exclude /usr/share/man/*\n"
        "path-exclude /usr/share/info/*\n"
    )


def _import_rootfs(
    client: DockerClient, rootfs: Path, tag: str, *, suite: str, mirror: str
) -> None:
    repository, _, version = tag.rpartition(":")
    if not repository or "/" in version:
        repository, version = tag, "latest"
    changes = [
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV LANG=C.UTF-8",
        'CMD ["bash"]',
        f"LABEL {LABEL_PREFIX}.image=debian-base",
        f"LABEL {LABEL_PREFIX}.debootstrap=minbase-{suite}",
        f"LABEL {LABEL_PREFIX}.mirror={mirror}",
    ]
    excludes = [
        "./var/lib/apt/lists/*",
        "./var/cache/apt/*",
        "./dev/*",
        "./proc/*",
        "./sys/*",
        "./tmp/*",
    ]
    command = ["tar", "-C", str(rootfs), "--numeric-owner"]
    command += [f"--exclude={pattern}" for pattern in excludes] + ["-c", "."]
    with tempfile.TemporaryFile() as tar_errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=tar_errors)
        assert process.stdout is not None
        stdout = process.stdout
        try:
            blocks = iter(lambda: stdout.read(1 << 20), b"")
            client.api.import_image_from_stream(
                blocks, repository=repository, tag=version, changes=changes
            )
        finally:
            stdout.close()
            code = process.wait()
        if code != 0:
            tar_errors.seek(0)
            lines = tar_errors.read().decode(errors="replace").splitlines()
            raise ImageBuildFailed(tag, f"tar of the root fs exited with {code}", lines[-20:])


@contextlib.contextmanager
def _scratch_dir(prefix: str) -> Iterator[Path]:
    """A temp dir under /var/tmp, removed afterwards even if debootstrap left mounts in it."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    try:
        yield path
    finally:
        for mount_point in reversed(_mounts_below(path)):
            subprocess.run(["umount", "--lazy", mount_point], check=False)
        if _mounts_below(path):
            log.warning("left %s in place: mounts below it could not be removed", path)
        else:
            shutil.rmtree(path, ignore_errors=True)


def _mounts_below(path: Path) -> list[str]:
    prefix = str(path) + "/"
    mounts: list[str] = []
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            mount_point = re.sub(r"\\(\d{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
            if mount_point.startswith(prefix):
                mounts.append(mount_point)
    return sorted(mounts)


# --- CLI -----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """`images bootstrap|build|context ...`; `python -m orchestrator images` delegates here."""
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator images",
        description="Build the stack's images (cached by a hash of their inputs).",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="show build output")
    commands = parser.add_subparsers(dest="command", required=True)

    boot = commands.add_parser(
        "bootstrap", parents=[common], help=f"make {BASE_TAG} with debootstrap (root)"
    )
    boot.add_argument("--tag", default=BASE_TAG)
    boot.add_argument("--mirror", default=DEBIAN_MIRROR)
    boot.add_argument("--force", action="store_true", help="rebuild even if the tag exists")
    boot.add_argument("--json", action="store_true", help="print the result as JSON")

    build = commands.add_parser(
        "build", parents=[common], help="build the images whose tag doesn't exist yet"
    )
    build.add_argument(
        "names", nargs="*", metavar="NAME", help=f"any of {', '.join(IMAGE_NAMES)} (default: all)"
    )
    build.add_argument("--base", choices=get_args(BaseChoice), default="auto")
    build.add_argument("--force", action="store_true", help="rebuild without layer cache")
    build.add_argument("--json", action="store_true", help="print the results as JSON")

    ctx = commands.add_parser(
        "context", parents=[common], help="write an image's build context to a folder"
    )
    ctx.add_argument("name", choices=IMAGE_NAMES)
    ctx.add_argument("dest", type=Path)

    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.verbose:
        log.setLevel(logging.DEBUG)
    try:
        if args.command == "bootstrap":
            result = bootstrap_base_image(args.tag, args.mirror, force=args.force)
            _print_results([result], as_json=args.json)
        elif args.command == "build":
            unknown = sorted(set(args.names) - set(IMAGE_NAMES))
            if unknown:
                parser.error(f"unknown image {', '.join(unknown)}; choose from {IMAGE_NAMES}")
            names = tuple(args.names) or IMAGE_NAMES
            built = build_images(names, base=args.base, force=args.force)
            tag_latest(built)
            _print_results(list(built.values()), as_json=args.json)
        else:
            write_build_context(build_context(args.name), args.dest)
            print(f"docker build --network host {args.dest}")
    except (OrchestratorError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _print_results(results: Sequence[ImageResult], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps([dataclasses.asdict(result) for result in results], indent=2))
        return
    for result in results:
        print(
            f"{result.name:<14} {result.status:<6} {result.seconds:7.1f}s "
            f"{result.size_bytes / 1e6:7.0f} MB  {result.tag}  {result.image_id}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
