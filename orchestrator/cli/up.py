"""`up [OPTIONS] [--json] [--state FILE]`: start the stack, print its environment, keep it
running until Ctrl-C (exit 0) or SIGTERM (128+15)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.cli.exits import EXIT_TEARDOWN_FAILED
from orchestrator.cli.handoff import profile_environment
from orchestrator.cli.options import EPILOG, add_stack_options, stack_config
from orchestrator.cli.supervisor import Interrupted, unwinding_signals
from orchestrator.messages import tell

if TYPE_CHECKING:
    from orchestrator.session import Run

__all__ = ["register"]


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "up",
        help="start the stack and keep it running until Ctrl-C",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_stack_options(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object with the URLs")
    parser.add_argument(
        "--state",
        type=Path,
        default=None,
        help="also write the stack's environment to this file while it is up "
        "(`nox -s e2e` reuses a live one)",
    )
    parser.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    config = stack_config(args)
    from orchestrator.errors import TeardownErrors
    from orchestrator.session import open_stack

    with unwinding_signals():
        try:
            with open_stack(config) as run:
                if config.seed:
                    run.app.reset(run.backend_url, True, {})
                environment = run.environment()
                environment.update(profile_environment(config.app, {**os.environ, **environment}))
                _announce(run, environment, args.json)
                with _state_file(args.state, run, environment):
                    threading.Event().wait()  # until a signal unwinds us
        except Interrupted as interrupt:
            tell(f"{interrupt}: stack stopped")
            # Ctrl-C is how `up` is meant to end.
            return 0 if interrupt.signum == signal.SIGINT else 128 + interrupt.signum
        except TeardownErrors as exc:
            tell(str(exc))
            return EXIT_TEARDOWN_FAILED
    return 0


def _announce(run: Run, environment: dict[str, str], as_json: bool) -> None:
    if as_json:
        print(json.dumps(environment), flush=True)
        return
    for key, value in environment.items():
        print(f"export {key}={shlex.quote(value)}", flush=True)
    if run.app.web_service is not None:
        print(f"UI and API: {run.backend_url}/", file=sys.stderr, flush=True)
    print("stack is up; Ctrl-C to stop", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _state_file(path: Path | None, run: Run, environment: dict[str, str]) -> Iterator[None]:
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
        "environment": environment,
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
        if _written_by_us(path):  # another `up` may have taken the file over meanwhile
            path.unlink()


def _written_by_us(path: Path) -> bool:
    """The state file still names this process (only then is it ours to remove)."""
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid()
    except (OSError, ValueError, AttributeError):
        return False
