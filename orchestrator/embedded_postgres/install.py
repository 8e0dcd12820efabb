"""What one PostgreSQL install holds, as its pg_config reports it."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import PrerequisiteMissing


@dataclass(frozen=True)
class Install:
    """What pg_config says about the install in `bindir`."""

    bindir: Path
    sharedir: Path
    pkglibdir: Path
    version: str  # e.g. "16.2"

    @classmethod
    def inspect(cls, bindir: Path) -> Install:
        out = pg_config_output(
            [str(bindir / "pg_config"), "--sharedir", "--pkglibdir", "--version"]
        )
        sharedir, pkglibdir, version_line = out.splitlines()[:3]
        # "PostgreSQL 16.2", or "PostgreSQL 15.18 (Debian 15.18-0+deb12u1)"
        match = re.match(r"PostgreSQL (\d+(?:\.\d+)*)", version_line)
        version = match.group(1) if match else version_line.split()[-1]
        return cls(bindir, Path(sharedir), Path(pkglibdir), version)

    @property
    def extension_dir(self) -> Path:
        return self.sharedir / "extension"

    @property
    def root(self) -> Path:
        return self.bindir.parent

    def is_self_contained(self) -> bool:
        """True when bin, share and lib all sit under one root (pgserver's layout)."""
        root = self.root.resolve()
        return all(p.resolve().is_relative_to(root) for p in (self.sharedir, self.pkglibdir))


def pg_config_output(args: list[str]) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise PrerequisiteMissing(
            f"{args[0]} failed ({exc})",
            "point --pg-bindir / STACK_PG_BINDIR at a complete "
            "PostgreSQL bin directory, or pip install pgserver==0.1.4",
        ) from exc
