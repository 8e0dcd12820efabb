"""`merge --out DIR SHARD_DIR... [--expect N] [--annotate] [--history DIR|off]`: one verdict
from shard folders (exit 0 green, 1 red, 2 bad arguments; see `orchestrator.merge`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from orchestrator.arguments import EXIT_USAGE, positive_count
from orchestrator.errors import OrchestratorError

__all__ = ["register"]


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "merge",
        help="combine shard folders into one verdict",
        description="Merge shard artifacts folders into one (junit.xml, summary.md, index.html).",
    )
    parser.add_argument("--out", type=Path, required=True, help="the merged folder (new or empty)")
    parser.add_argument("shard_dirs", nargs="+", type=Path, metavar="SHARD_DIR")
    parser.add_argument(
        "--expect",
        type=positive_count,
        default=None,
        metavar="N",
        help="how many shards there should be (1 or more, not fewer than the SHARD_DIRs "
        "given): fewer SHARD_DIRs make the verdict red (a leg that died)",
    )
    parser.add_argument(
        "--fail-on-flaky",
        action="store_const",
        const=True,
        default=None,
        help="a flaky test in any shard makes the merge red (env STACK_FAIL_ON_FLAKY, "
        "[tool.ci-stack] fail-on-flaky)",
    )
    parser.add_argument(
        "--annotate",
        action="store_true",
        help="print ::error annotations for the failed tests when GITHUB_ACTIONS=true",
    )
    parser.add_argument(
        "--history",
        default=None,
        metavar="DIR",
        help="the run history that labels the failures and records the merged run, or off "
        "(env STACK_HISTORY; default: .ci-stack/history under the project root)",
    )
    parser.set_defaults(handler=execute)


def execute(args: argparse.Namespace) -> int:
    from orchestrator.artifacts.junit import count_outcomes
    from orchestrator.config import OrchestratorConfig
    from orchestrator.github import print_annotations
    from orchestrator.history import LABELS
    from orchestrator.merge import EXIT_RED, check_arguments, merge_shards, rerun_lines

    problem = check_arguments(args.out, args.shard_dirs, args.expect)
    if problem:
        print(f"merge: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        settings = OrchestratorConfig.load(
            {"history": args.history, "fail_on_flaky": args.fail_on_flaky}
        )
        merged = merge_shards(
            args.shard_dirs,
            args.out,
            expected=args.expect,
            history=settings.history_folder,
            fail_on_flaky=settings.fail_on_flaky,
        )
    except OrchestratorError as exc:
        print(f"merge: {exc}", file=sys.stderr)
        return EXIT_USAGE
    labels = merged.history.labels if merged.history is not None else None
    if args.annotate:
        print_annotations(args.out, labels=labels)
    counts = count_outcomes(case for _, case in merged.cases)
    print(
        f"merge  {len(merged.shards)} shards · {len(merged.cases)} tests · passed "
        f"{counts['passed']} · failed {counts['failed']} · errors {counts['error']} · skipped "
        f"{counts['skipped']} · flaky {counts['flaky']}  ->  {args.out}/",
        file=sys.stderr,
    )
    if merged.history is not None:
        found = list(merged.history.labels.values())
        print(
            f"merge  history {merged.history.folder}/: {len(merged.history.runs)} earlier "
            "run(s); failures: " + ", ".join(f"{found.count(label)} {label}" for label in LABELS),
            file=sys.stderr,
        )
    for shard in merged.shards:
        if shard.links_left_out:
            print(
                f"merge  shard {shard.name}: not copied, symbolic link(s) pointing outside it: "
                + ", ".join(shard.links_left_out),
                file=sys.stderr,
            )
    if merged.quarantined:
        print(
            "merge  quarantined (not counted): "
            + ", ".join(f"{case.junit_name} {case.outcome}" for _, case in merged.quarantined),
            file=sys.stderr,
        )
    for line in rerun_lines(merged):
        print(f"merge  {line}", file=sys.stderr)
    for reason in merged.reasons:
        print(f"merge  red: {reason}", file=sys.stderr)
    return 0 if merged.passed else EXIT_RED
