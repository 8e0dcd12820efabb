"""pytest plugin (entry point `pytest11`, `ci_stack_browser`): Playwright tests leave evidence.

Active only when pytest-playwright is (its plugin `playwright` is registered); then, with no
conftest of the user's own:

- `base_url` is the stack's web URL (`--base-url` still wins, and then no stack is started);
- `browser_type_launch_args`: Playwright's own Chromium when installed, else the system's
  with the flags it needs (`orchestrator.browser.find_chromium`);
- `--tracing retain-on-failure` and `--screenshot only-on-failure` unless asked otherwise;
- `output_path`: a test's trace and screenshot land in its `tests/<slug>/` of the run's
  evidence folder (else under Playwright's `--output`, same slug);
- every browser context (`context`, `page`, or `new_context()` called by a test) sends the
  test's id as `X-Test-Id` (a header the context is made with, so no call of ours shows
  among the test's steps in its trace), so the app's log lines of this test can be found;
- the console of every page of those contexts is recorded: a failed test keeps it as
  `console.jsonl` (one JSON object per console call: `type`, `at`, and the call's own JSON
  object, or `message` for plain text); `console_events` gives a test the list.

Each is an ordinary fixture: a conftest that defines the same name replaces it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from orchestrator.artifacts.layout import CONSOLE_FILE
from orchestrator.browser import find_chromium
from orchestrator.contract import TEST_ID_HEADER
from orchestrator.errors import PrerequisiteMissing
from orchestrator.pytest_evidence import evidence_artifacts, write_test_file
from orchestrator.pytest_plugin import test_failed
from orchestrator.util import test_slug

__all__ = ["PLAYWRIGHT_PLUGIN", "BrowserGlue", "console_event"]

PLAYWRIGHT_PLUGIN = "playwright"  # pytest-playwright's entry point name
_GLUE_NAME = "ci-stack-browser-glue"
_CONSOLE_KEY = pytest.StashKey[list[dict[str, Any]]]()


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin(PLAYWRIGHT_PLUGIN):
        return  # no pytest-playwright (not installed, or `-p no:playwright`): nothing to glue
    # A failed test's trace and screenshot are always kept, unless asked otherwise.
    if config.getoption("--tracing", default="off") == "off":
        config.option.tracing = "retain-on-failure"
    if config.getoption("--screenshot", default="off") == "off":
        config.option.screenshot = "only-on-failure"
    # Registered after pytest-playwright, so these fixtures override its own.
    config.pluginmanager.register(BrowserGlue(), _GLUE_NAME)


def console_event(kind: str, text: str, at: str) -> dict[str, Any]:
    """One console call as recorded: its own JSON object when the text is one, else its text."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        return {"type": kind, "at": at, **data}
    return {"type": kind, "at": at, "message": text}


def _utc_now() -> str:
    """When the browser event reached us, in the log records' timestamp format."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _given_base_url(config: pytest.Config) -> str | None:
    """`--base-url` or the `base_url` ini value: the user aims the tests at a server of theirs."""
    option = config.getoption("--base-url", default=None)
    try:
        ini = config.getini("base_url")
    except ValueError:  # no such ini value registered
        ini = None
    return str(option or ini) if (option or ini) else None


class BrowserGlue:
    """The fixtures; registered by `pytest_configure` when pytest-playwright is active."""

    @pytest.fixture(scope="session")
    @classmethod
    def base_url(cls, request: pytest.FixtureRequest) -> str:
        """The stack's web URL (a stack is started or reused), unless --base-url names one."""
        given = _given_base_url(request.config)
        if given is not None:
            return given
        return str(request.getfixturevalue("backend_url"))

    @pytest.fixture(scope="session")
    @classmethod
    def browser_type_launch_args(
        cls, browser_type_launch_args: dict[str, Any], pytestconfig: pytest.Config
    ) -> dict[str, Any]:
        """Playwright's own Chromium when installed, else the system's with the flags it
        needs (for Chromium without --browser-channel; other browsers as Playwright has them)."""
        browsers = pytestconfig.getoption("--browser", default=None) or ["chromium"]
        channel = pytestconfig.getoption("--browser-channel", default=None)
        if channel or "executable_path" in browser_type_launch_args or browsers != ["chromium"]:
            return browser_type_launch_args
        try:
            choice = find_chromium()
        except PrerequisiteMissing as exc:
            pytest.fail(f"ci-stack: {exc}", pytrace=False)
        return {**browser_type_launch_args, **choice.launch_args()}

    @pytest.fixture
    def output_path(self, output_path: str, request: pytest.FixtureRequest) -> str:
        """Playwright's per-test folder: the test's tests/<slug>/ of the evidence folder when
        there is one (a stack this session starts names its folder once it runs), else the
        same slug under Playwright's --output folder."""
        if _given_base_url(request.config) is None:
            request.getfixturevalue("stack")  # a stack this session starts owns the folder
        artifacts = evidence_artifacts(request.config)
        if artifacts is None:
            return str(Path(output_path).parent / test_slug(request.node.nodeid))
        return str(artifacts.test_dir(request.node.nodeid).absolute())

    @pytest.fixture
    def console_events(self, request: pytest.FixtureRequest) -> list[dict[str, Any]]:
        """The console calls of this test's pages, in the order they arrived."""
        return request.node.stash.setdefault(_CONSOLE_KEY, [])

    @pytest.fixture
    def new_context(
        self,
        new_context: Callable[..., Any],
        browser_context_args: dict[str, Any],
        test_id: str,
        console_events: list[dict[str, Any]],
        request: pytest.FixtureRequest,
    ) -> Iterator[Callable[..., Any]]:
        """pytest-playwright's `new_context`, each context sending X-Test-Id and recording
        its pages' console; a failed test keeps that record as console.jsonl."""

        created: list[Any] = []

        marker = next(request.node.iter_markers("browser_context_args"), None)
        given = {**browser_context_args, **(marker.kwargs if marker else {})}

        def create(**kwargs: Any) -> Any:
            headers = kwargs.get("extra_http_headers") or given.get("extra_http_headers", {})
            with_id = {**headers, TEST_ID_HEADER: test_id}
            if "extra_http_headers" in given:  # pytest-playwright passes those itself
                context = new_context(**kwargs)
                context.set_extra_http_headers(with_id)
            else:  # one of the context's own headers: no call of ours in the test's trace
                context = new_context(**{**kwargs, "extra_http_headers": with_id})
            created.append(context)
            context.on(
                "console",
                lambda message: console_events.append(
                    console_event(message.type, message.text, _utc_now())
                ),
            )
            return context

        yield create
        if created and test_failed(request):
            text = "".join(json.dumps(event) + "\n" for event in console_events)
            write_test_file(request.config, request.node.nodeid, CONSOLE_FILE, text)
