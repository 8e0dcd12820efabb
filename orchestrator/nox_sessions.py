"""ci-stack's nox sessions for a project's own noxfile, in two lines:

    from orchestrator.nox_sessions import add_sessions
    add_sessions()

- `nox -s e2e [-- PYTEST_ARGS]`: make sure a Chromium is there, then `ci-stack run -- pytest
  e2e` (the evidence in the `artifacts` setting's folder; STACK_* settings from the
  environment, e.g. STACK_PROVIDER, STACK_SHARD).
- `nox -s up [-- OPTIONS]`: start the stack and keep it running until Ctrl-C.

Each session makes its own virtualenv and installs `install` into it (default: ci-stack with
the docker and browser extras, and the project's requirements.txt when there is one).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import nox

__all__ = ["INTERRUPT_GRACE_S", "TEARDOWN_GRACE_S", "add_sessions", "default_install"]

# After Ctrl-C nox waits INTERRUPT_GRACE_S for its child, then sends SIGTERM and waits
# TEARDOWN_GRACE_S before SIGKILL: ci-stack needs that to stop CMD, tear the stack down and
# write its report.
INTERRUPT_GRACE_S = 1.0
TEARDOWN_GRACE_S = 60.0
ORCHESTRATOR = ("python", "-m", "orchestrator")


def default_install(root: Path | None = None) -> list[str]:
    """`ci-stack[docker,browser]`, and `-r requirements.txt` when the project has one."""
    install = ["ci-stack[docker,browser]"]
    if ((root or Path.cwd()) / "requirements.txt").is_file():
        install += ["-r", "requirements.txt"]
    return install


def add_sessions(
    *,
    tests: Sequence[str] = ("e2e",),
    install: Sequence[str] | None = None,
    python: str | Sequence[str] | None = None,
) -> None:
    """Define the `e2e` and `up` sessions in the noxfile that calls this.

    `tests`: what `nox -s e2e` runs when no paths are given; `install`: pip arguments for
    each session's virtualenv (default: `default_install()`); `python`: nox's `python=`."""
    requirements = list(install) if install is not None else default_install()

    @nox.session(name="e2e", python=python, default=False)
    def e2e(session: nox.Session) -> None:
        """Browser tests on a fresh stack (STACK_PROVIDER=auto|local|docker)."""
        session.install(*requirements)
        session.run(*ORCHESTRATOR, "browser", "ensure")
        session.run(
            *ORCHESTRATOR, "run", "--", "pytest", *(session.posargs or tests),
            interrupt_timeout=INTERRUPT_GRACE_S, terminate_timeout=TEARDOWN_GRACE_S,
        )  # fmt: skip

    @nox.session(name="up", python=python, default=False)
    def up(session: nox.Session) -> None:
        """Start the stack and keep it running until Ctrl-C."""
        session.install(*requirements)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how `up` ends
            session.run(
                *ORCHESTRATOR, "up", *session.posargs,
                interrupt_timeout=INTERRUPT_GRACE_S, terminate_timeout=TEARDOWN_GRACE_S,
            )  # fmt: skip
        session.log("stack stopped")
