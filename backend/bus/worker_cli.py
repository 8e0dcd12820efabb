"""Placeholder until the worker lands: argument wiring for `python -m backend worker`."""

from __future__ import annotations

import argparse
import sys

from backend.config import Settings


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", type=int, default=None)


def run_worker(settings: Settings, args: argparse.Namespace) -> int:
    print("backend: the worker is not implemented yet", file=sys.stderr)
    return 2
