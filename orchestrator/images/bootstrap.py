"""The offline base image, for no registry: a Debian minbase root fs + `docker import`.

The root fs is made by `mmdebstrap` (apt resolves and fetches; faster than debootstrap's
shell resolver) or else `debootstrap`, both `--variant=minbase`, and carries the local provider's
PostgreSQL (orchestrator/images/base_postgres.py), so the database image installs nothing.
It is kept as a tar in the cache dir (keyed on suite, mirrors and that PostgreSQL, used for a
week): making the image again (another tag, after a prune, a CI cache restore) is an import of
a few seconds instead of a bootstrap of half a minute.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import PrerequisiteMissing
from orchestrator.images.base_postgres import BundledPostgres, bundled_postgres
from orchestrator.images.client import client_scope, local_image
from orchestrator.images.hashing import cache_key
from orchestrator.images.paths import default_cache_dir
from orchestrator.images.progress import BuildProgress
from orchestrator.images.results import (
    LABEL_PREFIX,
    SUBPROCESS_TIMEOUT_S,
    TAIL_LINES,
    BuildStatus,
    ImageBuildFailed,
    ImageResult,
)

if TYPE_CHECKING:
    from docker import DockerClient

log = logging.getLogger(__name__)

# Its own tag: older checkouts' Dockerfiles expect `:bookworm` to hold no PostgreSQL.
BASE_TAG = "ci-stack/debian-base:bookworm-pg16"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
BOOTSTRAP_COMMAND = "python -m orchestrator images bootstrap"
# Preferred first. debootstrap's per-package lines alternate "Retrieving x" / "Validating x":
# one phase.
BOOTSTRAP_TOOLS = ("mmdebstrap", "debootstrap")
_PHASES = {"Validating": "Retrieving"}
# dpkg leaves these out (of the root fs with mmdebstrap, of later installs with both tools).
# The `option=value` form: mmdebstrap applies only that form to its essential packages too.
_NO_DOCS = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
)
_MERGED_USR_HOOK = Path("/usr/share/mmdebstrap/hooks/maybe-merged-usr")
ROOTFS_MAX_AGE_S = 7 * 24 * 3600  # a cached root fs older than this is made again (updates)
ROOTFS_LAYOUT = 2  # part of the kept root fs's key: raise it when what goes into it changes


def bootstrap_base_image(
    tag: str = BASE_TAG,
    mirror: str = DEBIAN_MIRROR,
    *,
    suite: str = "bookworm",
    security_mirror: str | None = DEBIAN_SECURITY_MIRROR,
    force: bool = False,
    client: DockerClient | None = None,
    progress: BuildProgress | None = None,
    labels: Mapping[str, str] | None = None,
    cache_dir: Path | None = None,
) -> ImageResult:
    """Make `tag` from a minbase root fs (mmdebstrap, else debootstrap) + `docker import`,
    unless it exists.

    The root fs carries the local provider's PostgreSQL (the pgserver wheel's; see
    orchestrator/images/base_postgres.py). The image's apt sources are `<suite>`,
    `<suite>-updates` and (unless `security_mirror` is None) `<suite>-security`, over HTTP,
    which builds can reach with --network host.
    `progress` gets one line per bootstrap phase; `labels` are added to the image. The
    root fs tar is reused from `cache_dir` while under a week old (`force`: made again).
    """
    started = time.monotonic()
    report = progress or BuildProgress()
    with client_scope(client) as docker_api:
        existing = None if force else local_image(docker_api, tag)
        status: BuildStatus = "cached"
        if existing is None:
            found = _requirements()
            if isinstance(found, PrerequisiteMissing):
                raise found
            tool, postgres = found
            subject = "debian-base"
            report.begin(subject)
            archive = rootfs_archive(suite, mirror, security_mirror, cache_dir, postgres, tool)
            if force or not _fresh(archive):
                report.step(subject, f"{tool} --variant=minbase {suite} from {mirror}")
                with _scratch_dir("ci-stack-bootstrap-") as work:
                    rootfs = work / "rootfs"
                    _make_rootfs(tool, tag, suite, rootfs, mirror, security_mirror, report)
                    _configure_apt(rootfs, suite, mirror, security_mirror)
                    report.step(subject, f"PostgreSQL {postgres.install.version} added")
                    _add_postgres(tag, postgres, rootfs)
                    _archive_rootfs(tag, rootfs, archive)
            else:
                report.step(subject, f"root fs from {archive}")
            report.step(subject, f"docker import as {tag}")
            extra = {
                **(labels or {}),
                f"{LABEL_PREFIX}.bootstrap": f"{tool}-minbase-{suite}",
                f"{LABEL_PREFIX}.postgresql": postgres.install.version,
            }
            _import_rootfs(docker_api, archive, tag, mirror=mirror, labels=extra)
            report.step(subject, f"bootstrapped {tag}")
            existing = local_image(docker_api, tag)
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


def rootfs_archive(
    suite: str,
    mirror: str,
    security_mirror: str | None,
    cache_dir: Path | None = None,
    postgres: BundledPostgres | None = None,
    tool: str | None = None,
) -> Path:
    """Where the root fs tar of this suite, these mirrors, that PostgreSQL and tool is kept."""
    key = cache_key(
        {
            "suite": suite,
            "mirror": mirror,
            "security": security_mirror,
            "postgresql": postgres.identity() if postgres is not None else None,
            "tool": tool,
            "merged_usr_hook": tool == "mmdebstrap" and _MERGED_USR_HOOK.is_dir(),
            "layout": ROOTFS_LAYOUT,
        }
    )
    return (cache_dir or default_cache_dir()) / "debian-base" / f"{suite}-minbase-{key}.tar"


def _fresh(archive: Path) -> bool:
    try:
        return time.time() - archive.stat().st_mtime < ROOTFS_MAX_AGE_S
    except FileNotFoundError:
        return False


def bootstrap_tool() -> str | None:
    """mmdebstrap, else debootstrap, whichever is installed first; None without either."""
    return next((tool for tool in BOOTSTRAP_TOOLS if shutil.which(tool)), None)


def bootstrap_unavailable() -> PrerequisiteMissing | None:
    """Why the offline base cannot be bootstrapped on this machine, or None when it can."""
    found = _requirements()
    return found if isinstance(found, PrerequisiteMissing) else None


def _requirements() -> tuple[str, BundledPostgres] | PrerequisiteMissing:
    """(the tool, the PostgreSQL to carry), or what is missing. Root first: a user's PATH
    often lacks /usr/sbin, where debootstrap lives, so "not installed" would mislead."""
    if os.geteuid() != 0:
        return PrerequisiteMissing(
            "making the offline base needs root (mmdebstrap or debootstrap chroots into it)",
            f"run `sudo {BOOTSTRAP_COMMAND}` (with this virtualenv's python)",
        )
    tool = bootstrap_tool()
    if tool is None:
        return PrerequisiteMissing(
            "neither mmdebstrap nor debootstrap is installed",
            "apt-get install -y mmdebstrap (or debootstrap; as root)",
        )
    postgres = bundled_postgres()
    if postgres is None:
        return PrerequisiteMissing(
            "this python has no pgserver wheel, whose PostgreSQL 16 the offline base carries",
            f"run `sudo {BOOTSTRAP_COMMAND}` with the python of the virtualenv ci-stack is in",
        )
    return tool, postgres


def _add_postgres(tag: str, postgres: BundledPostgres, rootfs: Path) -> None:
    try:
        postgres.copy_into(rootfs)
    except OSError as exc:  # shutil.Error is one
        raise ImageBuildFailed(
            tag,
            f"copying PostgreSQL from {postgres.install.root} into the root fs failed: {exc}",
            [],
            hint="is /var/tmp full? (`df -h /var/tmp`)",
        ) from exc


def _make_rootfs(
    tool: str,
    tag: str,
    suite: str,
    rootfs: Path,
    mirror: str,
    security: str | None,
    report: BuildProgress,
) -> None:
    """Run mmdebstrap or debootstrap, one progress line per phase (Retrieving, ...)."""
    command = rootfs_command(tool, suite, rootfs, mirror, security)
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    phase = ""
    count = 0
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as process:
        assert process.stdout is not None
        watchdog = threading.Timer(SUBPROCESS_TIMEOUT_S, process.kill)  # a silent hang, too
        watchdog.start()
        for line in process.stdout:
            tail.append(line.rstrip())
            report.log("debian-base", line)
            if line.startswith("I: "):
                text = line.removeprefix("I: ").strip()
                verb = _PHASES.get(text.split(" ", 1)[0], text.split(" ", 1)[0])
                if verb != phase:
                    if count > 1:
                        report.step("debian-base", f"{tool}: {phase} done ({count} lines)")
                    phase, count = verb, 0
                    report.step("debian-base", f"{tool}: {text}")
                count += 1
        returncode = process.wait()
        timed_out = not watchdog.is_alive()
        watchdog.cancel()
    if timed_out:
        raise ImageBuildFailed(
            tag, f"{tool} took over {SUBPROCESS_TIMEOUT_S}s", list(tail), f"is {mirror} slow?"
        )
    if returncode != 0:
        lines = list(tail)
        log_file = rootfs / "debootstrap" / "debootstrap.log"
        if log_file.is_file():
            lines += log_file.read_text(errors="replace").splitlines()
        raise ImageBuildFailed(
            tag,
            f"{tool} exited with {returncode}",
            lines[-TAIL_LINES:],
            hint=f"check that {mirror} answers over HTTP from this machine",
        )


def rootfs_command(
    tool: str, suite: str, rootfs: Path, mirror: str, security: str | None
) -> list[str]:
    """The command line that makes a minbase root fs at `rootfs` with `tool`."""
    options, sources = ["--variant=minbase"], [mirror]
    if tool == "mmdebstrap":
        options += [f"--dpkgopt={line}" for line in _NO_DOCS]
        if _MERGED_USR_HOOK.is_dir():  # else `usrmerge` comes in, and Perl with it (+50 MB)
            options += [f"--hook-dir={_MERGED_USR_HOOK}"]
        # It takes whole sources lines: current packages from the start.
        sources += [f"deb {mirror} {suite}-updates main"]
        sources += [f"deb {security} {suite}-security main"] if security else []
    return [tool, *options, suite, str(rootfs), *sources]


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
    (rootfs / "etc/dpkg/dpkg.cfg.d/90ci-stack-nodoc").write_text("\n".join(_NO_DOCS) + "\n")


def _archive_rootfs(tag: str, rootfs: Path, archive: Path) -> None:
    """The root fs as a tar at `archive` (written aside, then renamed into place)."""
    excludes = [
        "./var/lib/apt/lists/*",
        "./var/cache/apt/*",
        "./dev/*",
        "./proc/*",
        "./sys/*",
        "./tmp/*",
    ]
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(f".{archive.name}.{os.getpid()}")
    command = ["tar", "-C", str(rootfs), "--numeric-owner"]
    command += [f"--exclude={pattern}" for pattern in excludes] + ["-cf", str(partial), "."]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        lines = result.stderr.splitlines()
        raise ImageBuildFailed(
            tag, f"tar of the root fs exited with {result.returncode}", lines[-20:]
        )
    partial.replace(archive)


def _import_rootfs(
    client: DockerClient,
    archive: Path,
    tag: str,
    *,
    mirror: str,
    labels: Mapping[str, str],
) -> None:
    repository, _, version = tag.rpartition(":")
    if not repository or "/" in version:
        repository, version = tag, "latest"
    changes = [
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV LANG=C.UTF-8",
        'CMD ["bash"]',
        f"LABEL {LABEL_PREFIX}.image=debian-base",
        f"LABEL {LABEL_PREFIX}.mirror={mirror}",
        *(f"LABEL {key}={value}" for key, value in labels.items()),
    ]
    with archive.open("rb") as stream:
        blocks = iter(lambda: stream.read(1 << 20), b"")
        client.api.import_image_from_stream(
            blocks, repository=repository, tag=version, changes=changes
        )


@contextlib.contextmanager
def _scratch_dir(prefix: str) -> Iterator[Path]:
    """A temp dir under /var/tmp, removed afterwards even if the bootstrap left mounts in it."""
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
