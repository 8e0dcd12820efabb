"""Latency of `POST /api/testing/reset`, unseeded and seeded, over real HTTP.

An embedded PostgreSQL, migrated, behind a testing-mode app served by waitress in a thread.
Run: `python -m benchmarks.bench_reset [--rounds N]`.
"""

from __future__ import annotations

import argparse
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from time import perf_counter
from typing import Any

import requests

from backend.config import Settings
from backend.services.migrate_command import migrate
from benchmarks.results import percentile, write_result
from orchestrator.embedded_postgres import EmbeddedPostgres
from tests.fixtures.backend import LiveServer, served_app, testing_settings

TARGET_P50_UNSEEDED_SECONDS = 0.3


@contextmanager
def served_testing_app(name: str, **overrides: Any) -> Iterator[LiveServer]:
    """A migrated embedded database behind a testing-mode app on a free port; all torn down."""
    run_id = f"bench-{name}-{os.getpid()}"
    with EmbeddedPostgres(password=secrets.token_hex(8), run_id=run_id) as postgres:
        url = postgres.url("postgres")
        if migrate(Settings(database_url=url)) != 0:
            raise RuntimeError(f"migrating {postgres!r} failed; see the log lines above")
        with served_app(testing_settings(url, **overrides)) as server:
            yield server


def time_resets(base_url: str, rounds: int, seed: bool) -> list[float]:
    """Seconds per reset, measured at the client (request sent to response read)."""
    timings: list[float] = []
    with requests.Session() as session:
        for _ in range(rounds):
            began = perf_counter()
            response = session.post(
                f"{base_url}/api/testing/reset", params={"seed": str(seed).lower()}, timeout=60
            )
            elapsed = perf_counter() - began
            if response.status_code != 200:
                raise RuntimeError(
                    f"reset (seed={seed}) answered {response.status_code}: {response.text[:500]}"
                )
            timings.append(elapsed)
    return timings


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 50), 4),
        "p95": round(percentile(values, 95), 4),
        "max": round(max(values), 4),
    }


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and write <BENCH_DIR>/reset.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30, help="resets per mode")
    args = parser.parse_args(argv)

    with served_testing_app("reset") as server:
        unseeded = time_resets(server.url, args.rounds, seed=False)
        seeded = time_resets(server.url, args.rounds, seed=True)
    plain, full = _summary(unseeded), _summary(seeded)
    path = write_result(
        "reset",
        {
            "rounds": args.rounds,
            "unseeded_seconds": plain,
            "seeded_seconds": full,
            "target_p50_unseeded_seconds": TARGET_P50_UNSEEDED_SECONDS,
            "meets_target": plain["p50"] < TARGET_P50_UNSEEDED_SECONDS,
        },
    )
    print(
        f"reset unseeded p50={plain['p50']:.3f}s p95={plain['p95']:.3f}s max={plain['max']:.3f}s; "
        f"seeded p50={full['p50']:.3f}s p95={full['p95']:.3f}s max={full['max']:.3f}s "
        f"(target p50 < {TARGET_P50_UNSEEDED_SECONDS}s unseeded) -> {path}"
    )


if __name__ == "__main__":
    main()
