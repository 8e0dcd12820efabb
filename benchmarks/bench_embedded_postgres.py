"""Start-to-ready and stop times of EmbeddedPostgres.

Run: `python -m benchmarks.bench_embedded_postgres [--rounds N] [--base-dir DIR]`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from time import perf_counter

from benchmarks.results import percentile, write_result
from orchestrator.embedded_postgres import EmbeddedPostgres, default_base_dir

TARGET_START_SECONDS = 1.5


def measure(rounds: int, base_dir: Path) -> tuple[list[float], list[float], str]:
    """Start and stop a fresh server `rounds` times; return (start times, stop times, version)."""
    starts: list[float] = []
    stops: list[float] = []
    version = ""
    for index in range(rounds):
        server = EmbeddedPostgres(password="bench", run_id=f"bench-{index}", base_dir=base_dir)
        with server:
            starts.append(server.started_seconds)  # start() call to first real connection
            version = server.version()
            stop_began = perf_counter()
        stops.append(perf_counter() - stop_began)
    return starts, stops, version


def _summary(values: list[float]) -> dict[str, float]:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "max": max(values)}


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and write <BENCH_DIR>/embedded_postgres.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--base-dir", type=Path, default=None, help="where data dirs go")
    args = parser.parse_args(argv)
    base_dir = args.base_dir or default_base_dir()

    starts, stops, version = measure(args.rounds, base_dir)
    start = _summary(starts)
    path = write_result(
        "embedded_postgres",
        {
            "rounds": args.rounds,
            "postgres_version": version,
            "base_dir": str(base_dir),
            "start_to_ready_seconds": start,
            "stop_seconds": _summary(stops),
            "target_start_seconds": TARGET_START_SECONDS,
            "meets_target": start["p95"] < TARGET_START_SECONDS,
        },
    )
    print(
        f"start-to-ready p50={start['p50']:.3f}s p95={start['p95']:.3f}s max={start['max']:.3f}s, "
        f"stop p50={percentile(stops, 50):.3f}s (data in {base_dir}) -> {path}"
    )


if __name__ == "__main__":
    main()
