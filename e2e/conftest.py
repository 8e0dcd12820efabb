"""Playwright glue: the stack's URL, a Chromium that exists here, per-test ids and evidence."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page

from orchestrator.browser import find_chromium
from orchestrator.pytest_plugin import TEST_ID_HEADER, artifacts_dir, test_failed
from orchestrator.util import test_slug

# The demo failure is only collected on request (it fails on purpose).
collect_ignore = [] if os.environ.get("E2E_DEMO_FAILURE") else ["test_demo_failure.py"]


def pytest_configure(config: pytest.Config) -> None:
    # Under `orchestrator run`, Playwright's trace and screenshot of a failed test land in the
    # same tests/<slug>/ folder as its log slice.
    folder = artifacts_dir()
    if folder is None:
        return
    if config.getoption("--output", default="test-results") == "test-results":
        config.option.output = str(folder / "tests")
    if config.getoption("--tracing", default="off") == "off":
        config.option.tracing = "retain-on-failure"
    if config.getoption("--screenshot", default="off") == "off":
        config.option.screenshot = "only-on-failure"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Playwright's own Chromium when installed, else the system's with the flags it needs."""
    return {**browser_type_launch_args, **find_chromium().launch_args()}


@pytest.fixture(scope="session")
def base_url(backend_url: str) -> str:
    return backend_url


@pytest.fixture
def context(new_context: Any, test_id: str) -> BrowserContext:
    """Every request the page makes carries this test's id."""
    return new_context(extra_http_headers={TEST_ID_HEADER: test_id})


@pytest.fixture(autouse=True)
def console_events(page: Page, request: pytest.FixtureRequest) -> Iterator[list[dict[str, Any]]]:
    """The page's structured console events (one JSON object per console call)."""
    events: list[dict[str, Any]] = []

    def collect(message: ConsoleMessage) -> None:
        try:
            data = json.loads(message.text)
        except ValueError:
            return  # Chromium's own messages (e.g. "Failed to load resource") are not ours
        if isinstance(data, dict):
            events.append({"type": message.type, **data})

    page.on("console", collect)
    yield events
    folder = artifacts_dir()
    if folder is not None and test_failed(request):
        target = Path(folder) / "tests" / test_slug(request.node.nodeid)
        target.mkdir(parents=True, exist_ok=True)
        (target / "console.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
