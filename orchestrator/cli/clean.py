"""`clean [--run-id ID] [--images]`: remove leftovers of runs whose owner is dead."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register"]


def register(commands: Any) -> None:
    parser = commands.add_parser("clean", help="remove leftovers of runs that are dead")
    parser.add_argument("--run-id", default=None, help="only this run's leftovers")
    parser.add_argument("--images", action="store_true", help="also stale image tags and stages")
    parser.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    from orchestrator.cleanup import clean_all
    from orchestrator.config import OrchestratorConfig

    pg_tmpdir = OrchestratorConfig.load().pg_tmpdir
    report = clean_all(args.run_id, images=args.images, pg_tmpdir=pg_tmpdir)
    for line in report.removed:
        print(f"removed {line}")
    for line in report.skipped:
        print(f"skipped {line}", file=sys.stderr)
    print(f"clean: {report.summary()}", file=sys.stderr)
    return 0
