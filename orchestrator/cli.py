"""`python -m orchestrator run|up|clean|images|browser|compose|report|merge`.

Exit codes: CMD's own status; 2 bad option, bad setting or missing prerequisite (one line
saying what and how to fix); 3 the stack did not start; 4 CMD passed but the teardown
failed; 5 a service of the stack exited while CMD ran; 126 CMD is not executable; 127 CMD
was not found; 128+N interrupted by signal N (or CMD killed by signal N).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from orchestrator.arguments import OneLineParser
from orchestrator.config import SETTINGS, SETTINGS_BY_NAME, OrchestratorConfig, flag
from orchestrator.errors import OrchestratorError, PrerequisiteMissing, StackStartError

if TYPE_CHECKING:
    from orchestrator.session import Run
    from orchestrator.stack import ServiceExit

EXIT_USAGE = 2  # bad option or missing prerequisite
EXIT_STACK_FAILED = 3  # the stack did not start
EXIT_TEARDOWN_FAILED = 4  # CMD passed but stopping the stack failed (details printed)
EXIT_SERVICE_EXITED = 5  # a service of the stack exited while CMD ran
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127
WATCH_INTERVAL = 0.2  # seconds between looks at the stack while CMD runs
CMD_STOP_GRACE = 10.0  # seconds CMD gets after SIGINT before SIGTERM, then SIGKILL

EPILOG = """\
exit codes: CMD's status · 2 bad option/setting or missing prerequisite · 3 the stack did not
start · 4 CMD passed, teardown failed · 5 a stack service exited during the run · 126/127 CMD
not executable/not found · 128+N signal N.
settings: CLI flag > environment > [tool.ci-stack] in pyproject.toml > default."""


class Interrupted(Exception):
    """SIGTERM/SIGINT arrived: unwind so every `finally` tears down."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class SignalGuard:
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


def _argument_type(name: str) -> Any:
    parse = SETTINGS_BY_NAME[name].parse

    def convert(raw: str) -> Any:
        try:
            return parse(raw)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = name  # argparse names the type in its messages
    return convert


def _help(name: str, default: object) -> str:
    setting = SETTINGS_BY_NAME[name]
    return f"{setting.help} (env {setting.env}; default: {default})"


# How a default reads in --help where its value alone would not say it.
_DEFAULT_TEXT = {"seed": "off", "pg_bindir": "the pgserver wheel's"}


def _stack_options(parser: argparse.ArgumentParser) -> None:
    """One option per setting that has a flag, from the config's table."""
    defaults = OrchestratorConfig()
    for setting in SETTINGS:
        if setting.flag is None:
            continue
        default = _DEFAULT_TEXT.get(setting.name, getattr(defaults, setting.name))
        how: dict[str, Any] = (
            {"action": "store_const", "const": True}
            if setting.parse is flag
            else {"type": _argument_type(setting.name)}
        )
        parser.add_argument(setting.flag, default=None, help=_help(setting.name, default), **how)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m orchestrator",
        description="Throwaway test stacks: start, run a command against it, stop.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="start the stack, run CMD against it, stop",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _stack_options(run)
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD ...")
    up = commands.add_parser(
        "up",
        help="start the stack and keep it running until Ctrl-C",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _stack_options(up)
    up.add_argument("--json", action="store_true", help="print one JSON object with the URLs")
    up.add_argument(
        "--state",
        type=Path,
        default=None,
        help="also write the stack's environment to this file while it is up "
        "(`nox -s e2e` reuses a live one)",
    )
    reset = commands.add_parser("reset", help="reset the data of the stack named by STACK_*")
    reset.add_argument("--seed", action="store_true", help="load the seed dataset")
    clean = commands.add_parser("clean", help="remove leftovers of runs that are dead")
    clean.add_argument("--run-id", default=None, help="only this run's leftovers")
    clean.add_argument("--images", action="store_true", help="also stale image tags and stages")
    commands.add_parser(
        "images",
        add_help=False,
        help="base images and builds: bootstrap | build | context (see `images --help`)",
    )
    browser = commands.add_parser("browser", help="find (or install) a Chromium for Playwright")
    browser.add_argument("action", choices=("ensure", "find"))
    commands.add_parser(
        "merge", add_help=False, help="combine shard folders into one verdict (see `merge --help`)"
    )
    commands.add_parser(
        "report", add_help=False, help="serve a run's report: [DIR] [--no-open] [--port N]"
    )
    compose = commands.add_parser("compose", help="print compose.yaml derived from the stack spec")
    compose.add_argument(
        "--app",
        type=_argument_type("app"),
        default=None,
        help=_help("app", OrchestratorConfig().app),
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["images"]:  # its own parser, with its own --help
        from orchestrator import images

        return _guarded(lambda: images.main(argv[1:]))
    if argv[:1] == ["merge"]:
        from orchestrator import merge

        return _guarded(lambda: merge.main(argv[1:]))
    if argv[:1] == ["report"]:
        from orchestrator import report_server

        return _guarded(lambda: report_server.main(argv[1:]))
    args = build_parser().parse_args(argv)
    return _guarded(lambda: _dispatch(args))


def _guarded(action: Any) -> int:
    try:
        return int(action())
    except PrerequisiteMissing as exc:
        print(f"orchestrator: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StackStartError as exc:
        print(f"orchestrator: the stack did not start: {exc}", file=sys.stderr)
        return EXIT_STACK_FAILED
    except OrchestratorError as exc:
        print(f"orchestrator: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _dispatch(args: argparse.Namespace) -> int:
    if args.command in ("up", "run"):
        return _run_or_up(args)
    if args.command == "clean":
        from orchestrator.cleanup import clean_all

        pg_tmpdir = OrchestratorConfig.load().pg_tmpdir
        report = clean_all(args.run_id, images=args.images, pg_tmpdir=pg_tmpdir)
        for line in report.removed:
            print(f"removed {line}")
        for line in report.skipped:
            print(f"skipped {line}", file=sys.stderr)
        print(f"clean: {report.summary()}", file=sys.stderr)
        return 0
    if args.command == "reset":
        return _reset(args.seed)
    if args.command == "browser":
        from orchestrator.browser import ensure_chromium, find_chromium

        choice = ensure_chromium() if args.action == "ensure" else find_chromium()
        where = choice.executable_path or "Playwright's own Chromium"
        print(f"browser: {choice.source} ({where})", file=sys.stderr)
        return 0
    from orchestrator.compose import render_compose
    from orchestrator.profile import load_profile

    config = OrchestratorConfig.load({"app": args.app})
    sys.stdout.write(render_compose(load_profile(config.app, config.root).spec(config)))
    return 0


def _config(args: argparse.Namespace) -> OrchestratorConfig:
    flags = {name: getattr(args, name, None) for name in SETTINGS_BY_NAME}
    return OrchestratorConfig.load(flags)


def _run_or_up(args: argparse.Namespace) -> int:
    cmd: list[str] = []
    if args.command == "run":
        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else list(args.cmd)
        if not cmd:
            raise PrerequisiteMissing(
                "run needs a command", "python -m orchestrator run -- pytest e2e"
            )
        unrunnable = _unrunnable(cmd[0])
        if unrunnable is not None:  # before a stack is started for nothing
            print(f"orchestrator: {unrunnable[1]}", file=sys.stderr)
            return unrunnable[0]
    config = _config(args)
    from orchestrator.errors import TeardownErrors
    from orchestrator.session import open_stack

    guard = SignalGuard()
    previous = {s: signal.signal(s, guard) for s in (signal.SIGTERM, signal.SIGINT)}
    status: int | None = None  # what this process exits with
    command_status: int | None = None  # CMD's own
    exited: list[ServiceExit] = []
    run: Run | None = None
    try:
        try:
            with open_stack(config, finish=False) as run:
                if config.seed:
                    run.app.reset(run.backend_url, True, {})
                if args.command == "up":
                    _announce(run, args.json)
                    with _state_file(args.state, run):
                        threading.Event().wait()  # until a signal unwinds us
                else:
                    command_status, exited = _run_command(run, cmd)
                    status = command_status
                    guard.hold()
                    if exited:
                        _report_exits(run, exited)
                        status = EXIT_SERVICE_EXITED
        except Interrupted as interrupt:
            print(f"orchestrator: {interrupt}: stack stopped", file=sys.stderr)
            # Ctrl-C is how `up` is meant to end.
            ended_up = args.command == "up" and interrupt.signum == signal.SIGINT
            return 0 if ended_up else 128 + interrupt.signum
        except TeardownErrors as exc:
            # CMD's verdict stands; a clean CMD run with a failed teardown is still a failure.
            print(f"orchestrator: {exc}", file=sys.stderr)
            return status if status else EXIT_TEARDOWN_FAILED
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if run is not None:  # the stack has stopped: the run's folder is finished now
            run.finish(cmd or None, command_status, exited)
    if args.command == "run":
        print(run.artifacts_line(), file=sys.stderr)  # says so when evidence is missing
    return status if status is not None else 0


def _announce(run: Run, as_json: bool) -> None:
    environment = run.environment()
    if as_json:
        print(json.dumps(environment), flush=True)
        return
    for key, value in environment.items():
        print(f"export {key}={shlex.quote(value)}", flush=True)
    if run.app.web_service is not None:
        print(f"UI and API: {run.backend_url}/", file=sys.stderr, flush=True)
    print("stack is up; Ctrl-C to stop", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _state_file(path: Path | None, run: Run) -> Iterator[None]:
    """While `up` runs: its pid and environment, for tools that reuse a live stack."""
    if path is None:
        yield
        return
    from orchestrator.spec import HttpProbe

    ready_path = "/"
    if run.app.web_service is not None:
        probe = run.spec.service(run.app.web_service).probe
        if isinstance(probe, HttpProbe) and probe.service is None:
            ready_path = probe.path
    state = {
        "pid": os.getpid(),
        "run_id": run.run_id,
        "ready_path": ready_path,
        "environment": run.environment(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    # It holds the database URL: 0600 from its first byte (other users share the machine).
    with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        os.fchmod(out.fileno(), 0o600)  # also when a killed `up` left it with another mode
        out.write(json.dumps(state, indent=2) + "\n")
    partial.replace(path)  # readers see the whole file or none
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _reset(seed: bool) -> int:
    from orchestrator.contract import ENV_APP, ENV_BACKEND_URL
    from orchestrator.profile import load_profile

    url = os.environ.get(ENV_BACKEND_URL)
    if not url:
        raise PrerequisiteMissing(
            f"reset needs a running stack, but {ENV_BACKEND_URL} is not set",
            "start one with `python -m orchestrator up` and export what it prints",
        )
    config = OrchestratorConfig.load()
    app = load_profile(os.environ.get(ENV_APP) or config.app, config.root)
    result = app.reset(url, seed, {})
    print(f"reset: {json.dumps(result)}", file=sys.stderr)
    return 0


def _report_exits(run: Run, exited: list[ServiceExit]) -> None:
    for gone in exited:
        print(f"orchestrator: {gone}; the last lines of its log:", file=sys.stderr)
        print(run.stack.log_tail(gone.name, 20), file=sys.stderr)


def _run_command(run: Run, cmd: list[str]) -> tuple[int, list[ServiceExit]]:
    """Run CMD in its own process group while watching the stack: its status (128+N for a
    signal) and the services of the stack that exited meanwhile."""
    from orchestrator.contract import OWNER_ENV, RUN_ENV
    from orchestrator.ownership import Owner
    from orchestrator.process_group import ProcessGroup

    # RUN_ENV/OWNER_ENV: `clean` stops CMD too if we are killed (it has its own session).
    owner = {RUN_ENV: run.run_id, OWNER_ENV: Owner.current().encode()}
    env = {**os.environ, **run.command_environment(), **owner}
    try:
        child = ProcessGroup(cmd, env, capture=False, stdin=None)
    except OSError:  # it went away or lost its mode since the check
        code, message = _unrunnable(cmd[0]) or (EXIT_NOT_EXECUTABLE, f"cannot run {cmd[0]}")
        print(f"orchestrator: {message}", file=sys.stderr)
        return code, []
    try:
        code, exited = _watch(run, child)
    except Interrupted as interrupt:
        _stop_command(child, first=interrupt.signum)  # what a terminal would send it
        raise
    finally:
        child.signal(signal.SIGKILL)  # whatever CMD left in its group (`nohup x &`)
    return (128 - code if code < 0 else code), exited


def _unrunnable(program: str) -> tuple[int, str] | None:
    """(exit code, message) when `program` cannot be run, as a shell would say it."""
    import shutil

    if "/" not in program:
        if shutil.which(program) is None:
            return EXIT_NOT_FOUND, f"command not found: {program} (is it installed and on PATH?)"
        return None
    path = Path(program)
    try:
        found = path.exists()
    except PermissionError:  # a folder on its way we may not enter (another user's, say)
        return EXIT_NOT_EXECUTABLE, f"command not executable: {program} (permission denied)"
    if not found:
        return EXIT_NOT_FOUND, f"command not found: {program} (no such file)"
    if path.is_dir() or not os.access(path, os.X_OK):
        return EXIT_NOT_EXECUTABLE, (
            f"command not executable: {program} (chmod +x it, or run it through its interpreter)"
        )
    return None


def _watch(run: Run, child: Any) -> tuple[int, list[ServiceExit]]:
    """Wait for CMD: its exit code, and the services of the stack that exited meanwhile (one
    that exits ends CMD: its stack is broken)."""
    import subprocess

    while True:
        try:
            code = int(child.wait(timeout=WATCH_INTERVAL))
            return code, run.stack.exited_services()  # CMD may have seen it go first
        except subprocess.TimeoutExpired:
            exited = run.stack.exited_services()
            if exited:
                _stop_command(child)  # SIGINT first: pytest still writes its reports
                return int(child.wait()), exited


def _stop_command(child: Any, first: int = signal.SIGINT) -> None:
    """`first` (SIGINT: pytest still writes its reports), then SIGTERM, then SIGKILL, to
    CMD's whole group."""
    import subprocess

    for signum, grace in ((first, CMD_STOP_GRACE), (signal.SIGTERM, 5.0)):
        child.signal(signum)
        try:
            child.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
    child.kill()
