"""`python -m backend serve|migrate|worker` — the backend's command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import replace

from backend.config import ConfigError, Settings

# Seconds `serve` and `worker` wait for the database after their imports (unset: no wait).
DATABASE_WAIT_ENV = "DATABASE_WAIT_SECONDS"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m backend", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the app with waitress")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=5000)
    serve.add_argument("--threads", type=int, default=None, help="waitress threads")

    commands.add_parser("migrate", help="apply Alembic migrations and sync master data")

    from backend.bus.worker_cli import add_worker_arguments

    worker = commands.add_parser("worker", help="process commands from the bus")
    add_worker_arguments(worker)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"backend: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        from backend.app import create_app
        from backend.server import serve

        if not wait_for_database(settings):
            return 1

        if args.threads:
            try:
                settings = replace(settings, waitress_threads=args.threads).checked()
            except ConfigError as exc:
                print(f"backend: configuration error: {exc}", file=sys.stderr)
                return 2
        return serve(create_app(settings), args.host, args.port)
    if args.command == "migrate":
        from backend.services.migrate_command import migrate

        return migrate(settings)
    from backend.bus.worker_cli import run_worker

    if not wait_for_database(settings):
        return 1
    return run_worker(settings, args)


def wait_for_database(settings: Settings) -> bool:
    """Imports done, wait up to DATABASE_WAIT_SECONDS for the database to answer (a stack
    starts us while it comes up); False, said on stderr, when it never did."""
    seconds = os.environ.get(DATABASE_WAIT_ENV, "").strip()
    if not seconds:
        return True
    from backend.db import wait_until_answering

    try:
        timeout = float(seconds)
    except ValueError:
        print(
            f"backend: {DATABASE_WAIT_ENV}={seconds!r} is not a number of seconds", file=sys.stderr
        )
        return False
    problem = wait_until_answering(settings.database_url, timeout)
    if problem is not None:
        print(
            f"backend: the database did not answer within {timeout:g}s: {problem}", file=sys.stderr
        )
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
