"""Stack start-up and teardown per provider, images already built (`nox -s bench`).

Per provider and round: db ready, migrations, backend ready, workers ready, total, teardown.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.results import percentile, write_result
from orchestrator.config import OrchestratorConfig
from orchestrator.providers.docker import docker_answers
from orchestrator.session import open_stack

ROUNDS = 3
STEPS = ("db ready", "migrate done", "backend ready", "2 worker ready", "total", "teardown")


def measure(provider: str, rounds: int = ROUNDS) -> dict[str, Any]:
    runs: list[dict[str, float]] = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="bench-stack-") as folder:
            config = OrchestratorConfig(provider=provider, workers=2, artifacts=Path(folder))
            with open_stack(config, progress=lambda _msg: None) as run:
                exit_started = time.perf_counter()
            teardown = time.perf_counter() - exit_started  # stop + finishing the folder
            timings = dict(run.stack.state.timings)
            timings["teardown"] = teardown
            runs.append({step: timings.get(step, 0.0) for step in STEPS})
            facts = run.stack.state.facts.get("prepare", {})
    summary = {
        step: {
            "p50": percentile([r[step] for r in runs], 50),
            "max": max(r[step] for r in runs),
        }
        for step in STEPS
    }
    return {"rounds": runs, "summary": summary, "prepare": facts}


def main() -> int:
    results: dict[str, Any] = {"local": measure("local")}
    ok, why = docker_answers()
    results["docker"] = measure("docker") if ok else {"skipped": why}
    path = write_result("stack", {"providers": results})
    for provider, data in results.items():
        summary = data.get("summary")
        if summary:
            line = " · ".join(f"{k} {v['p50']:.2f}s" for k, v in summary.items())
            print(f"{provider}: {line}", file=sys.stderr)
        else:
            print(f"{provider}: {data}", file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
