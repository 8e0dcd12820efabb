"""`run [OPTIONS] -- CMD ...`: start the stack, run CMD against it, stop it; CMD's status."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from orchestrator.cli.exits import EXIT_SERVICE_EXITED, EXIT_TEARDOWN_FAILED
from orchestrator.cli.handoff import profile_environment
from orchestrator.cli.options import EPILOG, add_stack_options, stack_config
from orchestrator.cli.supervisor import Interrupted, supervise, unrunnable, unwinding_signals
from orchestrator.contract import OWNER_ENV, RUN_ENV
from orchestrator.errors import PrerequisiteMissing
from orchestrator.messages import tell

if TYPE_CHECKING:
    from orchestrator.session import Run
    from orchestrator.stack import ServiceExit

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
        tell(problem[1])
        return problem[0]
    config = stack_config(args)
    from orchestrator.errors import TeardownErrors
    from orchestrator.ownership import Owner
    from orchestrator.session import open_stack

    status: int | None = None  # what this process exits with
    command_status: int | None = None  # CMD's own
    exited: list[ServiceExit] = []
    run: Run | None = None
    with unwinding_signals() as guard:
        try:
            with open_stack(config, finish=False) as run:
                if config.seed:
                    run.app.reset(run.backend_url, True, {})
                environment = {**os.environ, **run.command_environment()}
                environment.update(profile_environment(config.app, environment))
                # RUN_ENV/OWNER_ENV: `clean` stops CMD too if we are killed (it has its own
                # session).
                environment.update({RUN_ENV: run.run_id, OWNER_ENV: Owner.current().encode()})
                stack = run.stack

                def broken() -> bool:
                    exited[:] = stack.exited_services()  # CMD may have seen it go first
                    return bool(exited)

                command_status = supervise(cmd, environment, broken)
                exited[:] = stack.exited_services()
                status = command_status
                guard.hold()
                if exited:
                    for gone in exited:
                        tell(f"{gone}; the last lines of its log:")
                        print(stack.log_tail(gone.name, 20), file=sys.stderr)
                    status = EXIT_SERVICE_EXITED
        except Interrupted as interrupt:
            tell(f"{interrupt}: stack stopped")
            return 128 + interrupt.signum
        except TeardownErrors as exc:
            # CMD's verdict stands; a clean CMD run with a failed teardown is still a failure.
            tell(str(exc))
            return status if status else EXIT_TEARDOWN_FAILED
        finally:
            if run is not None:  # the stack has stopped: the run's folder is finished now
                run.finish(cmd, command_status, exited)
    print(run.artifacts_line(), file=sys.stderr)  # says so when evidence is missing
    return status if status is not None else 0
