"""`python -m orchestrator.images ...`: the same as `python -m orchestrator images ...`."""

from orchestrator.images.cli import main

raise SystemExit(main())
