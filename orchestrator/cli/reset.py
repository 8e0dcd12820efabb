"""`reset [--seed]`: reset the data of the running stack that STACK_* names."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from orchestrator.config import OrchestratorConfig
from orchestrator.contract import ENV_APP, ENV_BACKEND_URL
from orchestrator.errors import PrerequisiteMissing

__all__ = ["register"]


def register(commands: Any) -> None:
    parser = commands.add_parser("reset", help="reset the data of the stack named by STACK_*")
    parser.add_argument("--seed", action="store_true", help="load the seed dataset")
    parser.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    from orchestrator.profile import load_profile

    url = os.environ.get(ENV_BACKEND_URL)
    if not url:
        raise PrerequisiteMissing(
            f"reset needs a running stack, but {ENV_BACKEND_URL} is not set",
            "start one with `python -m orchestrator up` and export what it prints",
        )
    config = OrchestratorConfig.load()
    app = load_profile(os.environ.get(ENV_APP) or config.app, config.root)
    result = app.reset(url, args.seed, {})
    print(f"reset: {json.dumps(result)}", file=sys.stderr)
    return 0
