"""`init [--dir DIR] [--app-module REF] [--provider P] [--shards N] [--python V]`: set an
existing repository up for ci-stack (profile, noxfile sessions, workflow, first browser test).

Asks nothing and never overwrites: when a file it would write exists it writes none and
exits 2 with one line naming it. Lines for files of the user's own (noxfile.py,
pyproject.toml) are printed, not written into them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from orchestrator.arguments import positive_count

__all__ = ["register"]


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "init",
        help="set this repository up: profile, nox sessions, workflow, a first browser test",
        description="Write what ci-stack needs into an existing repository; never overwrite.",
    )
    parser.add_argument(
        "--dir", type=Path, default=Path("."), help="the repository's root (default: here)"
    )
    parser.add_argument(
        "--app-module",
        default=None,
        metavar="REF",
        help="the app, as module:attr or path/to/file.py:attr (default: the first Flask or "
        "WSGI app found)",
    )
    parser.add_argument(
        "--provider",
        choices=("auto", "local", "docker"),
        default="local",
        help="the provider the workflow and pyproject name (default: local, the embedded stack)",
    )
    parser.add_argument(
        "--shards", type=positive_count, default=2, metavar="N", help="CI legs (default: 2)"
    )
    parser.add_argument("--python", default="3.11", help="the workflow's Python (default: 3.11)")
    parser.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    from orchestrator.init import InitChoices, plan_init

    choices = InitChoices(
        app=args.app_module, provider=args.provider, shards=args.shards, python=args.python
    )
    plan = plan_init(args.dir, choices)
    written = plan.write()  # InitRefused: one line, exit 2 (nothing written)
    if plan.app is not None:
        how = (
            f" (migrations: {plan.migrations.tool} {plan.migrations.path})"
            if plan.migrations
            else ""
        )
        found = f"found {plan.app.kind} app {plan.app.reference} in {plan.app.path}{how}"
    else:
        found = "found no Flask or WSGI app: fill in the profile's services (see its comments)"
    print(f"init: {found}", file=sys.stderr)
    for path in written:
        print(f"wrote {path}")
    for name, lines in plan.additions.items():
        print(f"\nadd to {args.dir / name}:\n{lines}", end="")
    print(
        "\nnext: pip install 'ci-stack[docker,browser]' nox, then `nox -s e2e` "
        "(or `ci-stack run -- pytest e2e`)",
        file=sys.stderr,
    )
    return 0
