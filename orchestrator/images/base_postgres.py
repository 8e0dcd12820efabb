"""The PostgreSQL the offline base carries: the local provider's own (the `pgserver` wheel).

Without a registry there is no `postgres:16-bookworm`; building the database image then
meant `apt-get install postgresql-15` inside the build (~30 s, ~150 MB with LLVM and Perl),
after the base and before anything could start. The wheel's build is self-contained (glibc
and zlib only, its libpq beside it) and already on the machine, so the offline base gets a
copy of it at bootstrap time, at `/usr/lib/postgresql/<major>/` as Debian lays it out: the
PostgreSQL image's Dockerfile finds it there and installs nothing (PostgreSQL 16, as the
registry image). Its libraries go to `/usr/lib/<pkg>.libs`, where the binaries' rpath
(`$ORIGIN/../../../<pkg>.libs`) points from that place. The copies are made world-readable
(a venv made under umask 077 would leave them to root). No contrib modules, as with the local
provider (pgvector is there). Without the wheel the bootstrap refuses, in one line: a base
under this tag without PostgreSQL 16 would send the database image to apt's 15 for good.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from orchestrator.embedded_postgres.binaries import make_world_readable, resolve_bindir
from orchestrator.embedded_postgres.install import Install
from orchestrator.errors import OrchestratorError

# Not needed to run a server: headers, static libraries, build glue; and PGMQ, which the
# database image installs itself (the local provider may have added its files here).
_SKIPPED = ("include", "lib/pkgconfig", "lib/postgresql/pgxs")
_SKIPPED_NAMES = ("*.a", "pgmq.control", "pgmq--*.sql")


@dataclass(frozen=True)
class BundledPostgres:
    """A self-contained PostgreSQL install (bin, lib, share under one root) to copy."""

    install: Install
    libs: Path | None  # the wheel's `<pkg>.libs` beside the package, if it has one

    @property
    def major(self) -> str:
        return self.install.version.split(".", 1)[0]

    def identity(self) -> str:
        """Version and content of the server binary: part of the root fs cache key."""
        digest = hashlib.sha256((self.install.bindir / "postgres").read_bytes()).hexdigest()
        return f"{self.install.version}-{digest[:12]}"

    def copy_into(self, rootfs: Path) -> None:
        """Copy the install to `rootfs/usr/lib/postgresql/<major>/` (and its libraries)."""
        root = self.install.root.resolve()
        target = rootfs / "usr/lib/postgresql" / self.major
        skipped = [root / part for part in _SKIPPED]

        def ignore(folder: str, names: list[str]) -> set[str]:
            here = Path(folder)
            dropped = {name for name in names if here / name in skipped}
            return dropped | set(shutil.ignore_patterns(*_SKIPPED_NAMES)(folder, names))

        shutil.copytree(root, target, symlinks=True, ignore=ignore)
        make_world_readable(target)  # the image's postgres user runs them
        if self.libs is not None:
            libs = rootfs / "usr/lib" / self.libs.name
            shutil.copytree(self.libs, libs, symlinks=True)
            make_world_readable(libs)


def bundled_postgres() -> BundledPostgres | None:
    """The pgserver wheel's PostgreSQL when it is installed and self-contained, else None."""
    try:
        install = Install.inspect(resolve_bindir(None))
    except OrchestratorError:
        return None
    if not install.is_self_contained():
        return None
    package = install.root.resolve().parent
    libs = package.parent / f"{package.name}.libs"
    return BundledPostgres(install, libs if libs.is_dir() else None)
