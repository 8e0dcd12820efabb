"""Database growth of a bulk send with a large shared payload, at three sizes.

The bulk stores its payload once (command_payload) and each command's row and bus message
without a copy, so growth is one payload plus a small, constant cost per command.
An embedded PostgreSQL, migrated, behind a testing-mode app served by waitress in a thread
(no workers: the messages stay queued and are counted too).
Run: `python -m benchmarks.bench_bulk_payload [--payload-kib N]`.
"""

from __future__ import annotations

import argparse
import base64
import os
import time

import psycopg
import requests

from benchmarks.bench_reset import served_testing_app
from benchmarks.results import write_result

SIZES = (10, 50, 200)
MIB = 1024 * 1024


def database_bytes(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    assert row is not None
    return int(row[0])


def bulk_growth(base_url: str, database_url: str, count: int, payload: dict[str, str]) -> int:
    """Bytes the database grew by for one bulk of `count` commands."""
    before = database_bytes(database_url)
    started = requests.post(
        f"{base_url}/api/commands/bulk",
        json={"command_type": "TestCommand", "count": count, "behavior": {"type": "success"},
              "payload": payload},
        timeout=60,
    )  # fmt: skip
    if started.status_code != 202:
        raise RuntimeError(f"bulk answered {started.status_code}: {started.text[:300]}")
    task_url = f"{base_url}/api/tasks/{started.json()['task_id']}"
    deadline = time.perf_counter() + 120
    while not (status := requests.get(task_url, timeout=10).json())["done"]:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"bulk of {count} did not finish in 120 s: {status}")
        time.sleep(0.1)
    if status["last_event"]["event_type"] != "task_completed":
        raise RuntimeError(f"bulk of {count} failed: {status['last_event']}")
    return database_bytes(database_url) - before


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and write <BENCH_DIR>/bulk_payload.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--payload-kib", type=int, default=900, help="payload size (KiB)")
    args = parser.parse_args(argv)
    # Random bytes, base64: PostgreSQL can't compress them, like a real 1 MiB document.
    blob = base64.b64encode(os.urandom(args.payload_kib * 1024 * 3 // 4)).decode()
    payload = {"blob": blob}
    rows = []
    with served_testing_app("bulk-payload", max_request_bytes=2 * MIB) as server:
        database_url = server.app.config["SETTINGS"].database_url
        for count in SIZES:
            grown = bulk_growth(server.url, database_url, count, payload)
            rows.append(
                {
                    "commands": count,
                    "growth_mib": round(grown / MIB, 2),
                    "growth_per_command_kib": round(grown / count / 1024, 2),
                    "growth_in_payloads": round(grown / len(blob), 2),
                }
            )
    path = write_result("bulk_payload", {"payload_bytes": len(blob), "sizes": rows})
    for row in rows:
        print(
            f"bulk of {row['commands']:>3} x {len(blob) / MIB:.2f} MiB payload: database grew "
            f"{row['growth_mib']} MiB ({row['growth_in_payloads']} payloads, "
            f"{row['growth_per_command_kib']} KiB per command)"
        )
    print(f"-> {path}")


if __name__ == "__main__":
    main()
