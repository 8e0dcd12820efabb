"""`python -m orchestrator`: the CLI, or one line naming a missing dependency."""

import sys

from orchestrator.messages import tell

try:
    from orchestrator.cli import main

    status = main()
except ModuleNotFoundError as missing:  # e.g. only `pip install nox` so far
    tell(
        f"the Python package {missing.name!r} is not installed. "
        "Fix: pip install ci-stack (in its own repository nox does it: nox -s e2e)"
    )
    status = 2
sys.exit(status)
