"""`compose [--app REF]`: print the compose.yaml derived from the profile's stack spec."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from orchestrator.cli.options import setting_help, setting_type
from orchestrator.config import OrchestratorConfig

__all__ = ["register"]


def register(commands: Any) -> None:
    parser = commands.add_parser("compose", help="print compose.yaml derived from the stack spec")
    parser.add_argument(
        "--app",
        type=setting_type("app"),
        default=None,
        help=setting_help("app", OrchestratorConfig().app),
    )
    parser.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    from orchestrator.compose import render_compose
    from orchestrator.profile import load_profile

    config = OrchestratorConfig.load({"app": args.app})
    sys.stdout.write(render_compose(load_profile(config.app, config.root).spec(config)))
    return 0
