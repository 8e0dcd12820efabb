"""`report [DIR] [--port N] [--no-open]`: serve a run's folder on 127.0.0.1 and open its
report (see `orchestrator.report_server`); Ctrl-C stops."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from orchestrator.arguments import EXIT_USAGE, port_number
from orchestrator.messages import tell

__all__ = ["register"]


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "report",
        help="serve a run's report: [DIR] [--no-open] [--port N]",
        description="Serve a run's folder on 127.0.0.1 and open its report.",
    )
    parser.add_argument(
        "folder",
        nargs="?",
        type=Path,
        default=None,
        help="run folder (default: the artifacts setting)",
    )
    parser.add_argument(
        "--port", type=port_number, default=0, help="port on 127.0.0.1, 1-65535 (default: free)"
    )
    parser.add_argument("--no-open", action="store_true", help="print the URL, open nothing")
    parser.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    from orchestrator.artifacts.layout import REPORT_FILE
    from orchestrator.config import OrchestratorConfig
    from orchestrator.report_server import ReportServer, cannot_listen, open_in_browser

    # The artifacts setting as `run` resolves it: `report` finds what `run` wrote.
    folder: Path = args.folder or OrchestratorConfig.load({"artifacts": None}).artifacts
    if not (folder / REPORT_FILE).is_file():
        tell(
            f"{folder} has no {REPORT_FILE}. Fix: name a run's artifacts "
            "folder (python -m orchestrator report DIR) or run the tests first.",
            "report",
        )
        return EXIT_USAGE
    try:
        server = ReportServer(folder, args.port)
    except OSError as exc:
        tell(cannot_listen(args.port, exc), "report")
        return EXIT_USAGE
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with server:
            url = server.url + REPORT_FILE
            opened = None if args.no_open else open_in_browser(url)
            how = f"opened in {opened}" if opened else "open it in a browser"
            print(f"report  {url}  ({how}; Ctrl-C stops)", file=sys.stderr, flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0
