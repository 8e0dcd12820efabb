"""Delivery latency and loss of the testing log stream at 1,000 and 5,000 records/s.

One client follows `/api/testing/logs/stream` over real HTTP while a producer thread in the
same process logs paced records, each stamped with its send time (`perf_counter`), so
latency = arrival of the bytes at the client - the stamp.
Run: `python -m benchmarks.bench_log_stream [--seconds S] [--rates R ...]`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests

from benchmarks.bench_reset import served_testing_app
from benchmarks.results import percentile, write_result
from orchestrator.sse_client import SSEParser

BENCH_LOGGER = "bench.log_stream"
TARGET_RATE = 1000
TARGET_P99_SECONDS = 0.050
DRAIN_SECONDS = 5.0  # how long to wait for stragglers after a phase ends


@dataclass
class Received:
    """What the client saw, per phase (keyed by rate): latencies and record numbers."""

    latencies: dict[int, list[float]] = field(default_factory=dict)
    seqs: dict[int, set[int]] = field(default_factory=dict)
    dropped: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, rate: int) -> int:
        with self.lock:
            return len(self.seqs.get(rate, ()))


class StreamReader:
    """Reads the log stream in a thread; stamps each chunk on arrival, then parses it."""

    def __init__(self, url: str) -> None:
        self.received = Received()
        self._response = requests.get(url, stream=True, timeout=(5, 30))
        self._response.raise_for_status()
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._read, name="bench-reader", daemon=True)

    def start(self) -> StreamReader:
        self._thread.start()
        if not self._opened.wait(10):
            raise RuntimeError("the log stream sent no connection_open within 10s")
        return self

    def stop(self) -> None:
        self._response.close()
        self._thread.join(5)

    def _read(self) -> None:
        parser = SSEParser()
        raw = self._response.raw
        try:
            while chunk := raw.read1(65536):
                arrived = time.perf_counter()
                for frame in parser.feed(chunk):
                    self._take(frame.event, frame.data, arrived)
        except (OSError, ValueError, AttributeError):
            return  # closed by stop()

    def _take(self, event: str, data: str, arrived: float) -> None:
        if event == "connection_open":
            self._opened.set()
        elif event == "dropped":
            with self.received.lock:
                self.received.dropped += json.loads(data)["dropped"]
        elif event == "log" and BENCH_LOGGER in data:
            entry = json.loads(data)
            if entry["logger"] != BENCH_LOGGER:
                return
            extra = entry["extra"]
            rate = extra["rate"]
            with self.received.lock:
                self.received.latencies.setdefault(rate, []).append(arrived - extra["sent"])
                self.received.seqs.setdefault(rate, set()).add(extra["seq"])


def produce(rate: int, seconds: float) -> tuple[int, float]:
    """Log `rate` records/s for `seconds`, paced on perf_counter; returns (sent, achieved rate)."""
    log = logging.getLogger(BENCH_LOGGER)
    total = int(rate * seconds)
    began = time.perf_counter()
    for seq in range(total):
        delay = began + seq / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)  # pacing, not synchronization
        log.info("bench", extra={"rate": rate, "seq": seq, "sent": time.perf_counter()})
    elapsed = time.perf_counter() - began
    return total, total / elapsed


def run_phase(reader: StreamReader, rate: int, seconds: float) -> dict[str, Any]:
    result: dict[str, Any] = {}

    def producer() -> None:
        result["sent"], result["achieved_rate"] = produce(rate, seconds)

    thread = threading.Thread(target=producer, name=f"bench-producer-{rate}")
    thread.start()
    thread.join()
    sent: int = result["sent"]
    # Wait for stragglers: until all arrived, or nothing new came for DRAIN_SECONDS.
    last_count, last_progress = -1, time.perf_counter()
    while (count := reader.received.count(rate)) < sent:
        if count != last_count:
            last_count, last_progress = count, time.perf_counter()
        elif time.perf_counter() - last_progress > DRAIN_SECONDS:
            break
        time.sleep(0.01)
    with reader.received.lock:
        latencies = list(reader.received.latencies.get(rate, []))
        received = len(reader.received.seqs.get(rate, ()))
        dropped = reader.received.dropped
    return {
        "rate_per_second": rate,
        "seconds": seconds,
        "achieved_rate": round(result["achieved_rate"], 1),
        "sent": sent,
        "received": received,
        "lost": sent - received,
        "dropped_reported_so_far": dropped,
        "latency_seconds": _summary(latencies) if latencies else None,
    }


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 50), 5),
        "p99": round(percentile(values, 99), 5),
        "max": round(max(values), 5),
    }


@contextmanager
def stdout_logs_discarded() -> Iterator[None]:
    """Keep the stdout JSON handler (and its cost) but send its lines to /dev/null."""
    handlers = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.StreamHandler) and h.stream is sys.stdout
    ]
    with open(os.devnull, "w") as sink:
        previous = [h.setStream(sink) for h in handlers]
        try:
            yield
        finally:
            for handler, stream in zip(handlers, previous, strict=True):
                handler.setStream(stream)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and write <BENCH_DIR>/log_stream.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--rates", type=int, nargs="+", default=[1000, 5000])
    args = parser.parse_args(argv)

    phases: list[dict[str, Any]] = []
    load_before = os.getloadavg()[0]  # other work on the machine shows up in the tail
    with served_testing_app("log-stream") as server:
        reader = StreamReader(f"{server.url}/api/testing/logs/stream").start()
        try:
            with stdout_logs_discarded():
                for rate in args.rates:
                    phases.append(run_phase(reader, rate, args.seconds))
        finally:
            reader.stop()
    target = next((p for p in phases if p["rate_per_second"] == TARGET_RATE), None)
    meets = bool(
        target
        and target["lost"] == 0
        and target["latency_seconds"]
        and target["latency_seconds"]["p99"] < TARGET_P99_SECONDS
    )
    path = write_result(
        "log_stream",
        {
            "phases": phases,
            "target": {"rate_per_second": TARGET_RATE, "p99_seconds": TARGET_P99_SECONDS},
            "meets_target": meets,
            "load_average_1m": {"before": load_before, "after": os.getloadavg()[0]},
        },
    )
    for phase in phases:
        lat = phase["latency_seconds"] or {"p50": 0.0, "p99": 0.0, "max": 0.0}
        print(
            f"{phase['rate_per_second']}/s (achieved {phase['achieved_rate']}/s): "
            f"latency p50={lat['p50'] * 1000:.2f}ms p99={lat['p99'] * 1000:.2f}ms "
            f"max={lat['max'] * 1000:.2f}ms; sent={phase['sent']} received={phase['received']} "
            f"lost={phase['lost']} dropped={phase['dropped_reported_so_far']}"
        )
    print(f"meets target (p99 < 50 ms, zero loss at {TARGET_RATE}/s): {meets} -> {path}")


if __name__ == "__main__":
    main()
