"""Where benchmark results go and how they are written."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def results_dir() -> Path:
    """The folder benchmark JSON lands in (`BENCH_DIR` or artifacts/bench)."""
    folder = Path(os.environ.get("BENCH_DIR", "artifacts/bench"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_result(name: str, data: dict[str, Any]) -> Path:
    """Write one benchmark's numbers, stamped with when and where they were measured."""
    record = {
        "benchmark": name,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        **data,
    }
    path = results_dir() / f"{name}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of `values` (0 < pct <= 100)."""
    if not values:
        raise ValueError("percentile of an empty list")
    ordered = sorted(values)
    rank = max(1, round(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]
