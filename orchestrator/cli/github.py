"""`github annotate PATH` / `summary FILE [--artifact-url URL]` / `leg FOLDER --name NAME`:
GitHub Actions output for workflow steps (see `orchestrator.github`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from orchestrator.arguments import EXIT_USAGE
from orchestrator.errors import OrchestratorError

__all__ = ["register"]


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "github", help="GitHub Actions output for workflow steps: annotate | summary | leg"
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    annotate = actions.add_parser("annotate", help="print ::error lines for failed tests")
    annotate.add_argument("path", type=Path, help="a junit.xml or an artifacts folder")
    summary = actions.add_parser("summary", help="append a summary.md to the job summary")
    summary.add_argument("file", type=Path)
    summary.add_argument("--artifact-url", default="", help="the uploaded artifact's URL")
    leg = actions.add_parser(
        "leg", help="record a CI leg's name, run id and attempt in its artifacts folder"
    )
    leg.add_argument("folder", type=Path, help="the leg's artifacts folder (made if missing)")
    leg.add_argument("--name", required=True, help="the leg's name: its artifact's name")
    parser.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    from orchestrator.github import print_annotations, record_leg, write_job_summary

    try:
        if args.action == "leg":
            if args.folder.exists() and not args.folder.is_dir():
                problem = f"leg: {args.folder} is not a folder; give the leg's artifacts"
                print(problem, file=sys.stderr)
                return EXIT_USAGE
            record = record_leg(args.folder, args.name)
            print(f"leg {record.name}: run {record.run_id or '?'}, attempt {record.attempt}")
            return 0
        if args.action == "annotate":
            if not args.path.exists():
                print(
                    f"annotate: {args.path} does not exist; give junit.xml or a dir",
                    file=sys.stderr,
                )
                return EXIT_USAGE
            print_annotations(args.path)
            return 0
        if not args.file.is_file():
            print(
                f"summary: {args.file} does not exist; give the run's summary.md", file=sys.stderr
            )
            return EXIT_USAGE
        written = write_job_summary(args.file.read_text("utf-8"), args.artifact_url or None)
        if written is None:
            print("summary: GITHUB_STEP_SUMMARY is not set; nothing written", file=sys.stderr)
    except OrchestratorError as exc:
        print(f"github: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0
