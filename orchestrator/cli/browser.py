"""`browser ensure|find`: the Chromium Playwright will use (`ensure` installs one if none)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register"]


def register(commands: Any) -> None:
    parser = commands.add_parser("browser", help="find (or install) a Chromium for Playwright")
    parser.add_argument("action", choices=("ensure", "find"))
    parser.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    from orchestrator.browser import ensure_chromium, find_chromium

    choice = ensure_chromium() if args.action == "ensure" else find_chromium()
    where = choice.executable_path or "Playwright's own Chromium"
    print(f"browser: {choice.source} ({where})", file=sys.stderr)
    return 0
