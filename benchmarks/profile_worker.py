"""Where a `python -m backend worker` spends its CPU on a full queue (py-spy, all threads).

Run: `python -m benchmarks.profile_worker [--count 10000] [--top 25]` (needs `py-spy`:
`pip install py-spy`; it attaches to the worker by pid, so it needs ptrace rights).
One embedded PostgreSQL, `python -m backend serve`; `--count` success commands through the
bulk API, then one worker (concurrency 4) with py-spy attached until all are COMPLETED.
Prints the functions with the most samples on top of the stack (self) and the share of
samples under each of our modules (inclusive), and writes <BENCH_DIR>/worker_profile.json.
"""

from __future__ import annotations

import argparse
import re
import secrets
import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.bench_bus import (
    LIBRARY_FLAGS,
    REPO_ROOT,
    WORKER_FLAGS,
    BenchStack,
    enqueue_library,
    enqueue_ours,
    wait_all_completed,
)
from benchmarks.results import write_result

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")
IDLE = ("wait (threading.py", "select (selectors.py", "_wait_for_tstate_lock", "get (queue.py")


def frames_of(stack: str) -> list[str]:
    """'func (file:line)' entries of one collapsed stack, outermost first."""
    return [frame for frame in stack.split(";") if frame]


def short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for marker in ("site-packages/", f"{REPO_ROOT}/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match['func']} ({path})"


def summarize(raw: Path, top: int) -> dict[str, Any]:
    self_samples: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    inclusive_functions: Counter[str] = Counter()
    busy = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = frames_of(stack)
        if not frames or any(marker in frames[-1] for marker in IDLE):
            continue  # a thread waiting is not CPU
        busy += count
        self_samples[short(frames[-1])] += count
        for name in {short(frame) for frame in frames}:
            inclusive_functions[name] += count
        seen_modules = set()
        for frame in frames:
            match = _FRAME.match(frame)
            path = match["file"] if match else ""
            for module in ("backend/", "commandbus/", "psycopg/", "psycopg_pool/", "logging/"):
                if module in path:
                    seen_modules.add(module.rstrip("/"))
        for module in seen_modules:
            inclusive[module] += count
    return {
        "busy_samples": busy,
        "top_self": [
            {"function": name, "samples": n, "share": round(n / busy, 3)}
            for name, n in self_samples.most_common(top)
        ],
        "inclusive_share": {m: round(n / busy, 3) for m, n in inclusive.most_common()},
        "top_inclusive": [
            {"function": name, "samples": n, "share": round(n / busy, 3)}
            for name, n in inclusive_functions.most_common(top)
        ],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument(
        "--gil", action="store_true", help="only samples holding the GIL (Python CPU)"
    )
    parser.add_argument(
        "--library", action="store_true", help="profile benchmarks.library_worker instead"
    )
    parser.add_argument("--keep-raw", type=Path, help="copy py-spy's collapsed stacks here")
    args = parser.parse_args(argv)
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is not installed. Fix: pip install py-spy")
    with BenchStack(f"profile-{secrets.token_hex(3)}") as stack:
        if args.library:
            enqueue_library(stack, args.count)
            module, flags = "benchmarks.library_worker", LIBRARY_FLAGS
        else:
            enqueue_ours(stack, args.count)
            module, flags = "backend", WORKER_FLAGS
        raw = stack.folder / "profile.txt"
        (worker,) = stack.start_workers(module, 1, flags)
        assert worker.popen is not None
        recorder = subprocess.Popen(
            [spy, "record", "--pid", str(worker.popen.pid), "--format", "raw",
             "--rate", str(args.rate), "--output", str(raw), "--nonblocking",
             *(["--gil"] if args.gil else [])],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        wait_all_completed(stack, args.count, timeout=600)
        recorder.send_signal(signal.SIGINT)
        _, errors = recorder.communicate(timeout=60)
        if not raw.exists():
            raise SystemExit(f"py-spy wrote no profile: {errors.decode(errors='replace')}")
        summary = summarize(raw, args.top)
        if args.keep_raw is not None:
            shutil.copyfile(raw, args.keep_raw)
        stack.stop_workers()
    name = "library_worker_profile" if args.library else "worker_profile"
    name += "_gil" if args.gil else ""
    path = write_result(
        name,
        {"commands": args.count, "gil_only": args.gil, "rate": args.rate, **summary},
    )
    per_command = summary["busy_samples"] / args.rate / args.count * 1000
    print(f"busy samples: {summary['busy_samples']} ({per_command:.3f} ms per command)")
    for row in summary["top_self"]:
        print(f"{row['share']:6.1%} {row['samples']:6d}  {row['function']}")
    print("inclusive:")
    for row in summary["top_inclusive"]:
        print(f"{row['share']:6.1%} {row['samples']:6d}  {row['function']}")
    print(f"by module: {summary['inclusive_share']} -> {path}")


if __name__ == "__main__":
    main()
