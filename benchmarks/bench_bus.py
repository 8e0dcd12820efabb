"""The command bus as this app runs it, against reliable-cmd alone.

Run: `python -m benchmarks.bench_bus [--count 10000] [--rounds 3] [--rate 20] [--seconds 10]`.

One embedded PostgreSQL (migrated) and `python -m backend serve` (testing mode); per round:
1. Ours: `--count` success commands through `POST /api/commands/bulk` with no worker
   running (enqueue time: POST to task_completed on the task stream), then two
   `python -m backend worker --concurrency 4` on the full queue: throughput from the first
   RECEIVED to the last COMPLETED (commandbus.audit); every command must end COMPLETED with
   its result stored. In the first round, after a reset and with those workers idle,
   single commands at a steady `--rate` per second for `--seconds`: created -> COMPLETED
   latency percentiles.
2. The library: after a reset, the same `--count` through `SyncCommandBus.send_batch`, then
   two `benchmarks.library_worker` processes (no-op handler, concurrency 4).
Rounds alternate which side runs first. Medians over the rounds; the ratio is ours / library
(also per round). Machines shared with other work make single rounds noisy, hence the pairs.
Writes <BENCH_DIR>/bus.json; prints the headline (both throughputs, the ratio, CPU per
command) as one JSON object on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import psycopg
import requests
from commandbus import SendRequest
from commandbus.sync import SyncCommandBus
from psycopg_pool import ConnectionPool

from backend.bus.compat import apply_pgmq_compat
from benchmarks.results import percentile, write_result
from orchestrator.embedded_postgres import EmbeddedPostgres
from orchestrator.process_group import ProcessGroup
from orchestrator.util import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
GOALS = {
    "bulk_enqueue_seconds_max": 2.0,
    "throughput_ratio_min": 0.9,
    "latency_p95_ms_max": 20.0,
}
WORKER_FLAGS = ["--concurrency", "4", "--poll-interval", "0.5", "--heartbeat-interval", "0.5"]
LIBRARY_FLAGS = ["--concurrency", "4", "--poll-interval", "0.5"]


class BenchError(RuntimeError):
    """A phase could not be measured; the message says what was awaited and what was seen."""


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll `condition` until truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.perf_counter() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.perf_counter() > deadline:
            raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class Process:
    """One `python -m <module> <args>` child (its own process group), output in a log file."""

    def __init__(
        self, name: str, module: str, args: list[str], env: dict[str, str], folder: Path
    ) -> None:
        self.name = name
        self.command = [sys.executable, "-m", module, *args]
        self.env = {**os.environ, **env}
        self.log_path = folder / f"{name}.log"
        self.group: ProcessGroup | None = None

    @property
    def popen(self) -> subprocess.Popen[bytes] | None:
        return None if self.group is None else self.group.process

    def start(self) -> Self:
        self.group = ProcessGroup(self.command, self.env, output=self.log_path, cwd=REPO_ROOT)
        return self

    def check_alive(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            tail = "\n".join(self.log_text().splitlines()[-15:])
            raise BenchError(f"{self.name} exited with {self.popen.returncode}:\n{tail}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait, then SIGKILL the process group."""
        return None if self.group is None else self.group.stop(timeout)


class BenchStack:
    """PostgreSQL, the backend server and worker processes; `close()` stops all of them."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.folder = Path(tempfile.mkdtemp(prefix=f"ci-stack-{run_id}-bench-bus-"))
        self.postgres = EmbeddedPostgres(password=secrets.token_hex(8), run_id=run_id)
        self.database_url = ""
        self.base_url = ""
        self.processes: list[Process] = []
        self.workers: list[Process] = []

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close(keep_logs=True)
            raise

    def __exit__(
        self, _t: type[BaseException] | None, error: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close(keep_logs=error is not None)

    def start(self) -> Self:
        self.postgres.start()
        self.database_url = self.postgres.create_database("bench")
        migrate = self._spawn("migrate", "backend", ["migrate"])
        assert migrate.popen is not None
        if migrate.popen.wait(timeout=120) != 0:
            raise BenchError(f"migration failed:\n{migrate.log_text()[-3000:]}")
        port = free_port()
        server = self._spawn(
            "server", "backend", ["serve", "--host", "127.0.0.1", "--port", str(port)]
        )
        self.base_url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            server.check_alive()
            try:
                return requests.get(f"{self.base_url}/api/health/readyz", timeout=1).ok
            except requests.ConnectionError:
                return False

        wait_for(ready, 30, f"the backend at {self.base_url}/api/health/readyz")
        return self

    def _spawn(self, name: str, module: str, args: list[str]) -> Process:
        env = {"DATABASE_URL": self.database_url, "FLASK_ENV": "testing"}
        process = Process(name, module, args, env, self.folder).start()
        self.processes.append(process)
        return process

    def start_workers(self, module: str, count: int, extra: list[str]) -> list[Process]:
        started = []
        for index in range(count):
            name = f"{module.rsplit('.', 1)[-1]}-{index}"
            ready = self.folder / f"{name}.ready"
            args = [*extra, "--ready-file", str(ready)]
            if module == "backend":
                args = ["worker", *args, "--worker-id", f"{self.run_id}-{name}"]
            process = self._spawn(name, module, args)
            started.append(process)

            def is_ready(process: Process = process, ready: Path = ready) -> bool:
                process.check_alive()
                return ready.exists()

            wait_for(is_ready, 30, f"{name} to be ready")
        self.workers = started
        return started

    def stop_workers(self) -> None:
        codes = [worker.stop() for worker in self.workers]
        if any(code not in (0, None) for code in codes):
            raise BenchError(f"workers exited with {codes}")
        self.workers = []

    def reset(self) -> None:
        """`POST /api/testing/reset`, then wait until every running worker says it recovered."""
        marker = "recovered without restart"
        before = [w.log_text().count(marker) for w in self.workers]
        response = requests.post(f"{self.base_url}/api/testing/reset", timeout=60)
        if not response.ok:
            raise BenchError(f"reset failed: {response.status_code} {response.text}")
        for worker, seen in zip(self.workers, before, strict=True):

            def recovered(worker: Process = worker, seen: int = seen) -> bool:
                worker.check_alive()
                return worker.log_text().count(marker) > seen

            wait_for(recovered, 15, f"{worker.name} to recover from the reset")

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.database_url, autocommit=True)

    def close(self, keep_logs: bool = False) -> None:
        """Stop every process, then PostgreSQL; keep the logs when something failed."""
        errors = []
        for process in reversed(self.processes):
            try:
                process.stop()
            except Exception as exc:
                errors.append(f"{process.name}: {exc}")
        try:
            self.postgres.stop()
        except Exception as exc:
            errors.append(f"postgres: {exc}")
        if errors:
            print(f"cleanup problems: {errors}", file=sys.stderr)
        if errors or keep_logs:
            print(f"process logs kept in {self.folder}", file=sys.stderr)
        else:
            shutil.rmtree(self.folder, ignore_errors=True)


# -- database facts -----------------------------------------------------------------------


def status_counts(stack: BenchStack) -> dict[str, int]:
    with stack.connect() as conn:
        rows = conn.execute(
            "SELECT status, count(*) FROM commandbus.command GROUP BY status"
        ).fetchall()
    return {status: count for status, count in rows}


def wait_all_completed(stack: BenchStack, count: int, timeout: float) -> dict[str, int]:
    """Wait until `count` commands are COMPLETED; fail early if progress stalls."""
    deadline = time.perf_counter() + timeout
    last_done, last_change = -1, time.perf_counter()
    while True:
        for worker in stack.workers:
            worker.check_alive()
        counts = status_counts(stack)
        done = counts.get("COMPLETED", 0)
        if done >= count:
            return counts
        now = time.perf_counter()
        if done != last_done:
            last_done, last_change = done, now
        if now > deadline or now - last_change > 20:
            raise BenchError(f"waiting for {count} COMPLETED commands; stalled at {counts}")
        time.sleep(0.1)


def processing_window(stack: BenchStack) -> tuple[float, int]:
    """(seconds from the first RECEIVED to the last COMPLETED, COMPLETED events)."""
    with stack.connect() as conn:
        row = conn.execute(
            """
            SELECT EXTRACT(EPOCH FROM
                       max(ts) FILTER (WHERE event_type = 'COMPLETED')
                     - min(ts) FILTER (WHERE event_type = 'RECEIVED')),
                   count(*) FILTER (WHERE event_type = 'COMPLETED')
            FROM commandbus.audit
            """
        ).fetchone()
    assert row is not None and row[0] is not None
    return float(row[0]), int(row[1])


def lost_commands(stack: BenchStack, count: int) -> dict[str, int]:
    """What would show a lost or doubly-applied command (all zero when none was)."""
    with stack.connect() as conn:
        row = conn.execute(
            """
            SELECT (SELECT count(*) FROM commandbus.command WHERE status <> 'COMPLETED'),
                   (SELECT count(*) FROM pgmq.q_test__commands),
                   (SELECT count(*) FROM test_command WHERE result IS NULL),
                   (SELECT count(*) FROM test_command)
            """
        ).fetchone()
    assert row is not None
    not_completed, queued, unapplied, app_rows = row
    return {
        "not_completed": not_completed,
        "still_queued": queued,
        "without_result": unapplied,
        "missing_app_rows": count - app_rows,
    }


# -- phases -------------------------------------------------------------------------------


def _task_completed(base_url: str, task_id: str, timeout: float) -> dict[str, Any]:
    """Follow the task's SSE stream; return the task_completed event."""
    with requests.get(f"{base_url}/api/tasks/{task_id}/stream", stream=True, timeout=timeout) as r:
        r.raise_for_status()
        name = ""
        for line in r.iter_lines(decode_unicode=True):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:") and name == "task_event":
                event = json.loads(line[5:])
                if event["event_type"] == "task_completed":
                    return dict(event)
                if event["event_type"] == "task_failed":
                    raise BenchError(f"bulk task failed: {event['data']}")
    raise BenchError(f"task {task_id} stream closed without task_completed")


def enqueue_ours(stack: BenchStack, count: int) -> float:
    """Seconds from `POST /api/commands/bulk` to task_completed on its stream (no workers)."""
    started = time.perf_counter()
    response = requests.post(
        f"{stack.base_url}/api/commands/bulk",
        json={
            "command_type": "TestCommand",
            "count": count,
            "behavior": {"type": "success", "execution_time_ms": 0},
        },
        timeout=30,
    )
    if response.status_code != 202:
        raise BenchError(f"bulk send refused: {response.status_code} {response.text}")
    _task_completed(stack.base_url, response.json()["task_id"], timeout=120)
    return time.perf_counter() - started


def enqueue_library(stack: BenchStack, count: int) -> float:
    """Seconds for `SyncCommandBus.send_batch` of `count` commands (no workers)."""
    apply_pgmq_compat()
    batch = [
        SendRequest(domain="test", command_type="TestCommand", command_id=uuid.uuid4(), data={})
        for _ in range(count)
    ]
    with ConnectionPool(stack.database_url, min_size=1, max_size=2) as pool:
        started = time.perf_counter()
        SyncCommandBus(pool).send_batch(batch, chunk_size=1000)
        return time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc), all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process(stack: BenchStack, module: str, flags: list[str], count: int) -> dict[str, Any]:
    """Start 2 workers of `module` on the queued commands; throughput until all COMPLETED.

    Also the workers' CPU per command: on a machine shared with other work it varies much
    less than the throughput, so it shows where our worker costs more than the library."""
    workers = stack.start_workers(module, 2, flags)
    pids = [w.popen.pid for w in workers if w.popen is not None]
    cpu_before = sum(cpu_seconds(pid) for pid in pids)
    counts = wait_all_completed(stack, count, timeout=300)
    cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
    window, completed_events = processing_window(stack)
    return {
        "processing_seconds": round(window, 3),
        "throughput_per_second": round(count / window, 1),
        "worker_cpu_ms_per_command": round(cpu * 1000 / count, 3),
        "statuses": counts,
        "completed_events": completed_events,
    }


def measure_latency(stack: BenchStack, rate: float, seconds: float) -> dict[str, Any]:
    """Phase 2: single commands at a steady rate; created -> COMPLETED per command."""
    total = round(rate * seconds)
    session = requests.Session()
    begin = time.perf_counter()
    late = 0
    for index in range(total):
        due = begin + index / rate
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)  # pacing the load, not waiting for a result
        else:
            late += 1
        response = session.post(
            f"{stack.base_url}/api/commands",
            json={"command_type": "TestCommand", "behavior": {"type": "success"}},
            timeout=10,
        )
        if response.status_code != 201:
            raise BenchError(f"send refused: {response.status_code} {response.text}")
    sent_seconds = time.perf_counter() - begin
    wait_all_completed(stack, total, timeout=60)
    with stack.connect() as conn:
        latencies = [
            float(row[0])
            for row in conn.execute(
                """
                SELECT EXTRACT(EPOCH FROM (a.ts - c.created_at)) * 1000
                FROM commandbus.command c
                JOIN commandbus.audit a
                  ON a.command_id = c.command_id AND a.event_type = 'COMPLETED'
                """
            )
        ]
    if len(latencies) != total:
        raise BenchError(f"expected {total} COMPLETED events, found {len(latencies)}")
    return {
        "commands": total,
        "rate_per_second": rate,
        "achieved_rate_per_second": round(total / sent_seconds, 1),
        "late_sends": late,
        "latency_ms": {
            "p50": round(percentile(latencies, 50), 2),
            "p95": round(percentile(latencies, 95), 2),
            "p99": round(percentile(latencies, 99), 2),
            "max": round(max(latencies), 2),
        },
    }


def _median_of(rounds: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(r[key] for r in rounds), 3)


def main(argv: list[str] | None = None) -> None:
    """Run the phases and write <BENCH_DIR>/bus.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3, help="ours/library pairs (medians)")
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)

    ours_rounds: list[dict[str, Any]] = []
    library_rounds: list[dict[str, Any]] = []
    latency: dict[str, Any] = {}
    with BenchStack(f"bench-{secrets.token_hex(3)}") as stack:

        def run_ours(index: int) -> None:
            nonlocal latency
            enqueue = enqueue_ours(stack, args.count)
            ours = process(stack, "backend", WORKER_FLAGS, args.count)
            ours.update(enqueue_seconds=round(enqueue, 3), lost=lost_commands(stack, args.count))
            ours_rounds.append(ours)
            print(f"round {index} ours: {json.dumps(ours)}", file=sys.stderr, flush=True)
            if not latency:
                stack.reset()
                latency = measure_latency(stack, args.rate, args.seconds)
                print(f"latency: {json.dumps(latency)}", file=sys.stderr, flush=True)
            stack.stop_workers()
            stack.reset()

        def run_library(index: int) -> None:
            enqueue = enqueue_library(stack, args.count)
            library = process(stack, "benchmarks.library_worker", LIBRARY_FLAGS, args.count)
            library["enqueue_seconds"] = round(enqueue, 3)
            library_rounds.append(library)
            print(f"round {index} library: {json.dumps(library)}", file=sys.stderr, flush=True)
            stack.stop_workers()
            stack.reset()

        # Alternating order (ours first, then the library first, ...): load from other work
        # on the machine that rises or falls during the run favours neither side.
        for index in range(args.rounds):
            order = (run_ours, run_library) if index % 2 == 0 else (run_library, run_ours)
            for phase in order:
                phase(index)

    ours_tp = _median_of(ours_rounds, "throughput_per_second")
    library_tp = _median_of(library_rounds, "throughput_per_second")
    ours_cpu = _median_of(ours_rounds, "worker_cpu_ms_per_command")
    library_cpu = _median_of(library_rounds, "worker_cpu_ms_per_command")
    enqueue = _median_of(ours_rounds, "enqueue_seconds")
    ratio = ours_tp / library_tp
    # Each round's own ratio: the two sides of a round ran minutes apart at most.
    pair_ratios = [
        round(o["throughput_per_second"] / lib["throughput_per_second"], 3)
        for o, lib in zip(ours_rounds, library_rounds, strict=True)
    ]
    none_lost = all(
        r["statuses"] == {"COMPLETED": args.count} and not any(r["lost"].values())
        for r in ours_rounds
    )
    met = {
        "all_completed_none_lost": none_lost,
        "bulk_enqueue_under_2s": enqueue < GOALS["bulk_enqueue_seconds_max"],
        "throughput_at_least_90pct_of_library": ratio >= GOALS["throughput_ratio_min"],
        "latency_p95_under_20ms": latency["latency_ms"]["p95"] < GOALS["latency_p95_ms_max"],
    }
    path = write_result(
        "bus",
        {
            "setup": {
                "commands": args.count,
                "rounds": args.rounds,
                "workers": 2,
                "concurrency": 4,
                "postgres": "embedded (fsync off)",
                "note": "enqueue measured with no worker running; throughput from the first "
                "RECEIVED to the last COMPLETED once workers start on the full queue",
            },
            "ours": {
                "enqueue_seconds": enqueue,
                "throughput_per_second": ours_tp,
                "rounds": ours_rounds,
            },
            "library": {
                "enqueue_seconds": _median_of(library_rounds, "enqueue_seconds"),
                "throughput_per_second": library_tp,
                "rounds": library_rounds,
            },
            "overhead_ratio": round(ratio, 3),
            "round_ratios": pair_ratios,
            "median_round_ratio": round(statistics.median(pair_ratios), 3),
            "worker_cpu_ms_per_command": {"ours": ours_cpu, "library": library_cpu},
            "latency": latency,
            "goals": GOALS,
            "met": met,
        },
    )
    print(
        f"bulk enqueue {enqueue:.2f}s; throughput ours {ours_tp}/s vs library {library_tp}/s "
        f"(ratio {ratio:.2f}, per round {pair_ratios}); worker CPU/command ours {ours_cpu} ms "
        f"vs library {library_cpu} ms; latency p50/p95/p99 {latency['latency_ms']['p50']}/"
        f"{latency['latency_ms']['p95']}/{latency['latency_ms']['p99']} ms; met {met} -> {path}",
        file=sys.stderr,
    )
    # The headline on stdout, as one JSON object (the whole record is in the file).
    print(
        json.dumps(
            {
                "throughput_per_second": {"worker": ours_tp, "library": library_tp},
                "ratio": round(ratio, 3),
                "round_ratios": pair_ratios,
                "worker_cpu_ms_per_command": {"worker": ours_cpu, "library": library_cpu},
                "goal_ratio_min": GOALS["throughput_ratio_min"],
                "met": met["throughput_at_least_90pct_of_library"],
                "result_file": str(path),
            }
        )
    )


if __name__ == "__main__":
    main()
