"""Stack start-up and teardown, this checkout against a baseline checkout (`nox -s bench`).

Per provider (local; docker when a daemon answers), alternating rounds: one stack
start + stop with the baseline checkout, one with this one, each in a fresh process running
`stack_driver.py` with that checkout's python and working directory. Writes the medians per
step for both and the ratio this/baseline to <BENCH_DIR>/stack.json.

Run: `python -m benchmarks.bench_stack [--rounds 5] [--baseline PATH] [--provider NAME]`.
The baseline is a checkout with its venv in `.venv` (`--baseline`, else $BENCH_BASELINE;
`nox -s bench` makes one of the commit it pins when neither is set). Without a baseline,
only this checkout is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.results import write_result
from orchestrator.providers.docker import docker_answers

BASELINE_ENV = "BENCH_BASELINE"
DRIVER = Path(__file__).with_name("stack_driver.py")
HERE = Path(__file__).resolve().parent.parent
ROUNDS = 5
WORKERS = 2
WORKERS_STEP = f"{WORKERS} worker ready"
STEPS = ("db ready", "migrate done", "backend ready", WORKERS_STEP, "total", "teardown")
ROUND_TIMEOUT = 600.0


def python_of(checkout: Path) -> Path:
    return checkout / ".venv" / "bin" / "python"


@dataclass(frozen=True)
class Checkout:
    root: Path
    python: Path


def one_round(checkout: Checkout, provider: str) -> dict[str, float]:
    """One start + stop in a fresh process of `checkout`; its timings per step."""
    env = {
        **os.environ,
        "PYTHONPATH": str(checkout.root),
        "TESTCONTAINERS_RYUK_DISABLED": "true",
    }
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(
        [str(checkout.python), str(DRIVER), provider, str(WORKERS)],
        cwd=checkout.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=ROUND_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.splitlines()[-15:])
        raise RuntimeError(f"the driver failed in {checkout.root} ({done.returncode}):\n{tail}")
    timings = json.loads(done.stdout.strip().splitlines()[-1])["timings"]
    return {step: float(timings.get(step, 0.0)) for step in STEPS}


def measure(provider: str, checkouts: dict[str, Checkout], rounds: int) -> dict[str, Any]:
    """Alternating rounds (the order flips every round); medians and ratios per step."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in checkouts}
    names = list(checkouts)
    for name in names:  # warm-up, not counted: page cache, compiled bytecode, snapshots
        one_round(checkouts[name], provider)
    for index in range(rounds):
        for name in names if index % 2 == 0 else reversed(names):
            runs[name].append(one_round(checkouts[name], provider))
    medians = {
        name: {step: statistics.median(r[step] for r in runs[name]) for step in STEPS}
        for name in names
    }
    result: dict[str, Any] = {"medians": medians, "rounds": runs}
    if "baseline" in medians:
        base, new = medians["baseline"], medians["current"]
        result["ratio"] = {
            step: round(new[step] / base[step], 3) if base[step] > 0 else None for step in STEPS
        }
    return result


def _baseline(option: str | None) -> Checkout | None:
    value = option or os.environ.get(BASELINE_ENV)
    if not value:
        return None
    path = Path(value).resolve()
    if not python_of(path).is_file():
        print(
            f"bench_stack: no {python_of(path)}. Fix: point --baseline / {BASELINE_ENV} at a "
            "checkout with its venv in .venv",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return Checkout(path, python_of(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--baseline", default=None, help=f"checkout to compare (${BASELINE_ENV})")
    parser.add_argument(
        "--provider", action="append", choices=("local", "docker"), help="default: both"
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be 1 or more")
    checkouts = {"current": Checkout(HERE, Path(sys.executable))}
    baseline = _baseline(args.baseline)
    if baseline is not None:
        checkouts = {"baseline": baseline, **checkouts}
    results: dict[str, Any] = {}
    for provider in args.provider or ("local", "docker"):
        if provider == "docker":
            ok, why = docker_answers()
            if not ok:
                results[provider] = {"skipped": why}
                continue
        try:
            results[provider] = measure(provider, checkouts, args.rounds)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            results[provider] = {"skipped": str(exc)}
    path = write_result(
        "stack",
        {
            "rounds": args.rounds,
            "checkouts": {name: str(c.root) for name, c in checkouts.items()},
            "providers": results,
        },
    )
    for provider, data in results.items():
        if "skipped" in data:
            print(f"{provider}: skipped: {data['skipped']}", file=sys.stderr)
            continue
        for name, medians in data["medians"].items():
            line = " · ".join(f"{k} {v:.2f}s" for k, v in medians.items())
            print(f"{provider} {name}: {line}", file=sys.stderr)
        if "ratio" in data:
            ratios = " · ".join(f"{k} {v}" for k, v in data["ratio"].items())
            print(f"{provider} ratio current/baseline: {ratios}", file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
