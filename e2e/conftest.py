"""What is particular to the demo app's browser suite.

Everything that makes a Playwright test leave evidence (the stack's URL as `base_url`, a
Chromium that exists here, trace and screenshot on failure into the evidence folder, the
X-Test-Id header, console capture) is ci-stack's plugin `orchestrator.pytest_browser`.
"""

from __future__ import annotations

import os

# The demo failure is only collected on request (it fails on purpose).
collect_ignore = [] if os.environ.get("E2E_DEMO_FAILURE") else ["test_demo_failure.py"]
