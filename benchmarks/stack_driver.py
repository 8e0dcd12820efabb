"""One stack start + stop, printed as JSON: the bench runs this with each checkout's python.

It uses only API that exists in every compared checkout (`OrchestratorConfig`,
`open_stack`, `run.stack.state.timings`), so the baseline runs it unchanged.
Usage: `python stack_driver.py PROVIDER WORKERS`; prints {"timings": {...}} on stdout.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    from orchestrator.config import OrchestratorConfig
    from orchestrator.session import open_stack

    provider, workers = sys.argv[1], int(sys.argv[2])
    with tempfile.TemporaryDirectory(prefix="bench-stack-") as folder:
        # The demo app's profile: the default of older checkouts, named since ci-stack has none.
        config = OrchestratorConfig(provider=provider, workers=workers, artifacts=Path(folder))
        if not config.app:
            config = config.with_values(app="backend.stack_profile:profile")
        with open_stack(config, progress=lambda _message: None) as run:
            exit_started = time.perf_counter()
        teardown = time.perf_counter() - exit_started  # stop + finishing the folder
    timings = dict(run.stack.state.timings)
    timings["teardown"] = teardown
    print(json.dumps({"timings": timings}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
