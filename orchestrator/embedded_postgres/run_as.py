"""Who runs initdb and postgres: as root, an unprivileged system user; else ourselves."""

from __future__ import annotations

import contextlib
import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.embedded_postgres.install import Install
from orchestrator.errors import OrchestratorError, PrerequisiteMissing


@dataclass(frozen=True)
class RunAs:
    """The unprivileged OS user initdb and postgres run as when we are root."""

    name: str
    uid: int
    gid: int

    @classmethod
    def for_current_process(cls) -> RunAs | None:
        if os.geteuid() != 0:
            return None  # run as ourselves
        for name in ("postgres", "nobody"):
            with contextlib.suppress(KeyError):
                entry = pwd.getpwnam(name)
                return cls(name, entry.pw_uid, entry.pw_gid)
        raise PrerequisiteMissing(
            "running as root, but neither a 'postgres' nor a 'nobody' user exists "
            "(initdb and postgres refuse to run as root)",
            "create a system user: useradd --system postgres, or run as a non-root user",
        )

    def popen_kwargs(self) -> dict[str, Any]:
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def can_use(self, install: Install) -> bool:
        """Ask the OS, as this user: can it read share/lib and run postgres (libs included)?"""
        check = 'test -r "$2" && test -x "$2" && test -r "$3" && test -x "$3" && "$1" --version'
        paths = [install.bindir / "postgres", install.extension_dir, install.pkglibdir]
        result = subprocess.run(
            ["/bin/sh", "-c", check, "sh", *map(str, paths)],
            cwd="/",
            capture_output=True,
            check=False,
            **self.popen_kwargs(),
        )
        return result.returncode == 0


def run_as_kwargs(run_as: RunAs | None, cwd: Path) -> dict[str, Any]:
    """subprocess arguments to run a PostgreSQL program as `run_as`, without our PG* env."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    kwargs: dict[str, Any] = {"env": env, "cwd": str(cwd)}
    if run_as is not None:
        kwargs.update(run_as.popen_kwargs())
    return kwargs


def run_or_fail(what: str, args: list[str], **kwargs: Any) -> None:
    result = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        output = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
        raise OrchestratorError(f"{what} failed with code {result.returncode}:\n{output}")
