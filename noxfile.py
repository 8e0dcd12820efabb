"""Sessions: tests, sse, e2e, up, bench, lint, typecheck. Each is a thin call into the code."""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
E2E_TESTS = ["e2e", "tests/integration"]


def _install(session: nox.Session, extras: str) -> None:
    session.install("-e", f".[{extras}]")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the full pytest suite (unit, integration, SSE baselines) on an embedded stack."""
    _install(session, "tests,e2e")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def sse(session: nox.Session) -> None:
    """Run only the SSE baseline tests (set STACK_BACKEND_URL to aim them at a running stack)."""
    _install(session, "tests")
    session.run("pytest", "tests/integration", "-m", "sse", *session.posargs)


@nox.session(python=PYTHON, default=False)
def e2e(session: nox.Session) -> None:
    """Start one stack (STACK_PROVIDER=auto|local|docker), run the browser and SSE suites on it."""
    _install(session, "tests,e2e")
    session.run("python", "-m", "orchestrator", "browser", "ensure")
    artifacts = os.environ.get("STACK_ARTIFACTS", "artifacts/e2e")
    session.run(
        "python", "-m", "orchestrator", "run", "--artifacts", artifacts, "--",
        "pytest", *E2E_TESTS, "-p", "no:cacheprovider", *session.posargs,
    )


@nox.session(python=PYTHON, default=False)
def up(session: nox.Session) -> None:
    """Start the stack and keep it running until Ctrl-C (prints the URLs)."""
    _install(session, "e2e")
    session.run("python", "-m", "orchestrator", "up", *session.posargs)


@nox.session(python=PYTHON, default=False)
def images(session: nox.Session) -> None:
    """Bootstrap the offline base image and/or build our images: `nox -s images -- bootstrap`."""
    _install(session, "e2e")
    for action in session.posargs or ["bootstrap", "build"]:
        session.run("python", "-m", "orchestrator", "images", action)


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Run the benchmarks; JSON results land in artifacts/bench/."""
    _install(session, "tests,e2e")
    for module in (
        "bench_embedded_postgres", "bench_reset", "bench_log_stream", "bench_bus", "bench_stack",
    ):
        session.run("python", "-m", f"benchmarks.{module}")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff lint."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """Mypy over backend, orchestrator, tests, e2e and this file."""
    _install(session, "tests,e2e,dev")
    session.run("mypy")
