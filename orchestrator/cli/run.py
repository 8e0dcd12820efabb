"""`run [OPTIONS] -- CMD ...`: start the stack, run CMD against it, stop it; CMD's status."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from orchestrator.cli.exits import EXIT_SERVICE_EXITED, EXIT_TEARDOWN_FAILED
from orchestrator.cli.handoff import profile_environment
from orchestrator.cli.options import EPILOG, add_stack_options, stack_config
from orchestrator.cli.supervisor import Interrupted, supervise, unrunnable, unwinding_signals
from orchestrator.contract import OWNER_ENV, RUN_ENV
from orchestrator.errors import PrerequisiteMissing

__all__ = ["register"]


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "run",
        help="start the stack, run CMD against it, stop",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_stack_options(parser)
    parser.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD ...")
    parser.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else list(args.cmd)
    if not cmd:
        raise PrerequisiteMissing("run needs a command", "python -m orchestrator run -- pytest e2e")
    problem = unrunnable(cmd[0])
    if problem is not None:  # before a stack is started for nothing
        print(f"orchestrator: {problem[1]}", file=sys.stderr)
        return problem[0]
    config = stack_config(args)
    from orchestrator.errors import TeardownErrors
    from orchestrator.ownership import Owner
    from orchestrator.session import open_stack

    status: int | None = None
    with unwinding_signals() as guard:
        try:
            with open_stack(config) as run:
                if config.seed:
                    run.app.reset(run.backend_url, True, {})
                run.command = cmd
                environment = {**os.environ, **run.command_environment()}
                environment.update(profile_environment(config.app, environment))
                # RUN_ENV/OWNER_ENV: `clean` stops CMD too if we are killed (it has its own
                # session).
                environment.update({RUN_ENV: run.run_id, OWNER_ENV: Owner.current().encode()})

                def broken() -> bool:
                    run.exited = run.stack.exited_services()
                    return bool(run.exited)

                status = supervise(cmd, environment, broken)
                run.command_status = status
                guard.hold()
                if run.exited:
                    for gone in run.exited:
                        print(f"orchestrator: {gone}; the last lines of its log:", file=sys.stderr)
                        print(run.stack.log_tail(gone.name, 20), file=sys.stderr)
                    status = EXIT_SERVICE_EXITED
        except Interrupted as interrupt:
            print(f"orchestrator: {interrupt}: stack stopped", file=sys.stderr)
            return 128 + interrupt.signum
        except TeardownErrors as exc:
            # CMD's verdict stands; a clean CMD run with a failed teardown is still a failure.
            print(f"orchestrator: {exc}", file=sys.stderr)
            return status if status else EXIT_TEARDOWN_FAILED
    print(run.artifacts_line(), file=sys.stderr)  # says so when evidence is missing
    return status if status is not None else 0
