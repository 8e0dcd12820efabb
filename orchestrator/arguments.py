"""Command-line pieces every subcommand shares: one-line usage errors, checked numbers."""

from __future__ import annotations

import argparse
from typing import NoReturn

EXIT_USAGE = 2  # bad option, bad setting or missing prerequisite
PORT_MAX = 65535


class OneLineParser(argparse.ArgumentParser):
    """Bad options end in one line on stderr (the problem, then where help is), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see: {self.prog} --help)\n")


def port_number(raw: str) -> int:
    """A TCP port for `--port`: 0 (a free one) to 65535."""
    try:
        port = int(raw)
    except ValueError:
        port = -1
    if not 0 <= port <= PORT_MAX:
        raise argparse.ArgumentTypeError(
            f"{raw!r} is not a port; give 1 to {PORT_MAX}, or 0 for a free one"
        )
    return port


def positive_count(raw: str) -> int:
    """A whole number of things, at least 1 (`merge --expect`)."""
    try:
        count = int(raw)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number of 1 or more")
    return count
