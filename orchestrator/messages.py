"""The one-line messages ci-stack prints on stderr, all prefixed with its name."""

from __future__ import annotations

import sys

PROGRAM = "ci-stack"  # the console script; also the prefix of every message


def tell(message: str, command: str | None = None) -> None:
    """`ci-stack: message` (or `ci-stack COMMAND: message`) on stderr."""
    prefix = f"{PROGRAM} {command}" if command else PROGRAM
    print(f"{prefix}: {message}", file=sys.stderr, flush=True)
