"""`python -m orchestrator.images ...`: the same as `python -m orchestrator images ...`."""

import sys

from orchestrator.cli import main

raise SystemExit(main(["images", *sys.argv[1:]]))
