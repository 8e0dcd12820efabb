"""`python -m orchestrator up|run|clean|images|browser|compose|report`."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn

from orchestrator.errors import (
    OrchestratorError,
    PrerequisiteMissing,
    StackStartError,
    TeardownErrors,
)
from orchestrator.redaction import Redactor
from orchestrator.session import StackOptions, open_stack
from orchestrator.spec import PROVIDER_CHOICES

EXIT_USAGE = 2  # bad option or missing prerequisite
EXIT_STACK_FAILED = 3  # the stack did not start
EXIT_TEARDOWN_FAILED = 4  # CMD passed but stopping the stack failed (details printed)


class Interrupted(Exception):
    """SIGTERM/SIGINT arrived: unwind so every `finally` tears down."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _SignalGuard:
    """The first SIGINT/SIGTERM unwinds the run; later ones must not cut the teardown short."""

    def __init__(self) -> None:
        self.received: int | None = None

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        if self.received is not None:
            print("orchestrator: still stopping the stack; please wait", file=sys.stderr)
            return
        self.received = signum
        raise Interrupted(signum)

    def hold(self) -> None:
        """From now on (teardown) signals only print a note."""
        if self.received is None:
            self.received = 0


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{raw!r} must be 0 or more")
    return value


def _positive_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{raw!r} must be more than 0 seconds")
    return value


def _stack_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--provider",
        choices=PROVIDER_CHOICES,
        default=None,
        help="where the stack runs (default: STACK_PROVIDER or auto)",
    )
    parser.add_argument("--workers", type=_positive_int, default=2, help="worker processes")
    parser.add_argument("--artifacts", type=Path, default=None, help="artifacts folder")
    parser.add_argument("--seed", action="store_true", help="load the seed dataset")
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=60.0,
        help="seconds each service may take to become ready",
    )
    parser.add_argument(
        "--pg-bindir",
        type=Path,
        default=None,
        help="PostgreSQL bin directory for the local provider",
    )


class _Parser(argparse.ArgumentParser):
    """Bad options end in one line on stderr (the problem, then where help is), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m orchestrator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the stack and keep it running")
    _stack_options(up)
    up.add_argument("--json", action="store_true", help="print one JSON object with the URLs")
    run = commands.add_parser("run", help="start the stack, run CMD against it, stop")
    _stack_options(run)
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD ...")
    clean = commands.add_parser("clean", help="remove leftovers of earlier runs")
    clean.add_argument("--run-id", default=None)
    images = commands.add_parser(
        "images", help="bootstrap the offline base or build images (see `images --help`)"
    )
    images.add_argument("images_args", nargs=argparse.REMAINDER)
    browser = commands.add_parser("browser", help="find (or install) a Chromium for Playwright")
    browser.add_argument("action", choices=("ensure", "find"))
    commands.add_parser("compose", help="print compose.yaml as derived from the stack spec")
    report = commands.add_parser("report", help="serve a run's report; View trace works there")
    report.add_argument("report_args", nargs=argparse.REMAINDER, help="[DIR] [--no-open]")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except PrerequisiteMissing as exc:
        print(f"orchestrator: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OrchestratorError as exc:
        print(f"orchestrator: {exc}", file=sys.stderr)
        return EXIT_STACK_FAILED if isinstance(exc, StackStartError) else EXIT_USAGE


def _dispatch(args: argparse.Namespace) -> int:
    if args.command in ("up", "run"):
        return _run_or_up(args)
    if args.command == "clean":
        from orchestrator.cleanup import clean_all

        removed = clean_all(args.run_id)
        for line in removed:
            print(f"removed {line}")
        print(f"clean: {len(removed)} leftover(s) removed", file=sys.stderr)
        return 0
    if args.command == "report":
        from orchestrator import report_server

        return report_server.main(args.report_args)
    if args.command == "images":
        from orchestrator import images

        return images.main(args.images_args)
    if args.command == "browser":
        from orchestrator.browser import ensure_chromium, find_chromium

        choice = ensure_chromium() if args.action == "ensure" else find_chromium()
        where = choice.executable_path or "Playwright's own Chromium"
        print(f"browser: {choice.source} ({where})", file=sys.stderr)
        return 0
    from orchestrator.compose import render_compose
    from orchestrator.spec import build_spec

    sys.stdout.write(render_compose(build_spec()))
    return 0


def _run_or_up(args: argparse.Namespace) -> int:
    from orchestrator.cleanup import RUN_ENV

    if args.command == "run":
        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        if not cmd:
            print(
                "orchestrator: run needs a command: python -m orchestrator run -- pytest e2e",
                file=sys.stderr,
            )
            return EXIT_USAGE
    artifacts = args.artifacts or Path(os.environ.get("STACK_ARTIFACTS", "artifacts/stack"))
    # The database password is made here so every message and artifact can be redacted.
    password = secrets.token_urlsafe(18)
    redact = Redactor([password])
    options = StackOptions(
        provider=args.provider,
        workers=args.workers,
        artifacts_dir=artifacts,
        seed=args.seed,
        timeout=args.timeout,
        pg_bindir=args.pg_bindir,
        password=password,
    )
    guard = _SignalGuard()
    previous = {s: signal.signal(s, guard) for s in (signal.SIGTERM, signal.SIGINT)}
    status: int | None = None
    error: str | None = None
    facts: dict[str, object] = {}
    try:
        try:
            with open_stack(options) as stack:
                facts = stack.facts()
                if args.command == "up":
                    _announce(stack.environment(), args.json)
                    threading.Event().wait()  # until a signal unwinds us
                else:
                    # RUN_ENV lets `clean` stop CMD too if we are killed (it has its own session).
                    env = {**os.environ, **stack.environment(), RUN_ENV: stack.spec.run_id}
                    status = _run_command(cmd, env)
                    guard.hold()
                facts = stack.facts()
        except StackStartError as exc:
            error = redact("\n".join([str(exc), *getattr(exc, "__notes__", [])]))
            print(f"orchestrator: the stack did not start: {error}", file=sys.stderr)
            return EXIT_STACK_FAILED
        except Interrupted as interrupt:
            print(f"orchestrator: {interrupt}: stack stopped", file=sys.stderr)
            return 128 + interrupt.signum
        except TeardownErrors as exc:
            # CMD's verdict stands; a clean CMD run with a failed teardown is still a failure.
            error = redact(str(exc))
            print(f"orchestrator: {error}", file=sys.stderr)
            return status if status else EXIT_TEARDOWN_FAILED
        except OrchestratorError as exc:  # reported by main(); recorded in summary.md too
            error = redact(str(exc))
            raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if args.command == "run":
            _finish_artifacts(options, redact, facts, status, error)
    return status if status is not None else 0


def _announce(environment: dict[str, str], as_json: bool) -> None:
    if as_json:
        print(json.dumps(environment), flush=True)
        return
    for key, value in environment.items():
        print(f"{key}={value}", flush=True)
    print("stack is up; Ctrl-C to stop", file=sys.stderr, flush=True)


def _run_command(cmd: list[str], env: dict[str, str]) -> int:
    """Run CMD in its own process group; forward our interrupts to it."""
    process = subprocess.Popen(cmd, env=env, start_new_session=True)
    try:
        return process.wait()
    except Interrupted:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        raise


def _finish_artifacts(
    options: StackOptions,
    redact: Redactor,
    facts: dict[str, object],
    status: int | None,
    error: str | None,
) -> None:
    from orchestrator.artifacts import Artifacts, RunInfo, finish_run

    stack_json = options.artifacts_dir / "stack.json"
    if stack_json.exists():
        facts = {**json.loads(stack_json.read_text()), **{k: v for k, v in facts.items() if v}}
    artifacts = Artifacts(options.artifacts_dir, redact)
    if not artifacts.root.exists():
        return
    timings = facts.get("timings")
    run = RunInfo(
        run_id=str(facts.get("run_id") or "?"),
        provider=str(facts.get("provider") or options.provider or "?"),
        # As before the session refactor: any problem reads "failed" (the lead may use
        # "error" for a stack that did not start or stop).
        verdict="passed" if status == 0 and error is None else "failed",
        command_status=status,
        error=error,
        timings=dict(timings) if isinstance(timings, dict) else {},
        stack=facts,
    )
    finished = finish_run(artifacts, run)
    print(
        f"artifacts  {artifacts.root}/  (report: {finished.report}, summary: {finished.summary})",
        file=sys.stderr,
    )
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a") as handle:
            handle.write(finished.github_summary)
