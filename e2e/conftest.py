"""Playwright glue: the stack's URL, a Chromium that exists here, per-test ids and evidence.

A failed test keeps its trace, screenshot and console events in the evidence folder's
tests/<slug>/ (see orchestrator.pytest_evidence), beside its log slice and SSE transcripts
(the evidence plugin records those of the `sse_client` fixture for every test).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page

from orchestrator.browser import find_chromium
from orchestrator.pytest_evidence import evidence_artifacts, write_test_file
from orchestrator.pytest_plugin import TEST_ID_HEADER, StackHandle, test_failed
from orchestrator.util import test_slug

# The demo failure is only collected on request (it fails on purpose).
collect_ignore = [] if os.environ.get("E2E_DEMO_FAILURE") else ["test_demo_failure.py"]


def pytest_configure(config: pytest.Config) -> None:
    # A failed test's trace and screenshot are always kept (they land in the evidence
    # folder when there is one, see `output_path`), unless asked otherwise.
    if config.getoption("--tracing", default="off") == "off":
        config.option.tracing = "retain-on-failure"
    if config.getoption("--screenshot", default="off") == "off":
        config.option.screenshot = "only-on-failure"


@pytest.fixture
def output_path(output_path: str, request: pytest.FixtureRequest, stack: StackHandle) -> str:
    """Playwright's per-test folder: the test's tests/<slug>/ of the evidence folder, when
    there is one (after `stack`: a self-started stack names its folder only once it runs),
    else the same slug under Playwright's --output folder."""
    artifacts = evidence_artifacts(request.config)
    if artifacts is None:
        return str(Path(output_path).parent / test_slug(request.node.nodeid))
    return str(artifacts.test_dir(request.node.nodeid).absolute())


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
    """The page's structured console events (one JSON object per console call, stamped with
    the time it arrived, for the report's timeline)."""
    events: list[dict[str, Any]] = []

    def collect(message: ConsoleMessage) -> None:
        try:
            data = json.loads(message.text)
        except ValueError:
            return  # Chromium's own messages (e.g. "Failed to load resource") are not ours
        if isinstance(data, dict):
            events.append({"type": message.type, "at": _utc_now(), **data})

    page.on("console", collect)
    yield events
    if test_failed(request):
        text = "".join(json.dumps(e) + "\n" for e in events)
        write_test_file(request.config, request.node.nodeid, "console.jsonl", text)


def _utc_now() -> str:
    """When the browser event reached us, in the backend's log timestamp format."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
