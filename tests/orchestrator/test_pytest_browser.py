"""The `ci_stack_browser` pytest plugin: a user's Playwright test leaves evidence with no
conftest of its own.

The inner sessions run in a subprocess (pytest-playwright's soft-assertion scope cannot nest
in-process) against a tiny HTTP server of this process standing in for the stack: with
STACK_BACKEND_URL set, the plugin reuses it, and it records the X-Test-Id of every request.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from orchestrator import util  # not its test_* names: pytest would collect them
from orchestrator.artifacts import load_run
from orchestrator.contract import RUN_ENV, TEST_ID_HEADER
from orchestrator.pytest_browser import console_event

pytest_plugins = ["pytester"]

PAGE = b"""<!doctype html><title>app</title><p id=hello>hello</p>
<script>console.log(JSON.stringify({kind: "loaded", path: location.pathname}));
console.warn("plain words");</script>"""

SUITE = """
from playwright.sync_api import expect


def test_root_page_opens(page):
    page.goto("/")
    expect(page.locator("#hello")).to_have_text("hello")


def test_a_context_of_its_own_sends_the_id_too(new_context):
    page = new_context().new_page()
    page.goto("/own")


def test_fails_after_logging(page, console_events):
    page.goto("/failing")
    expect(page.locator("#hello")).to_have_text("hello")
    assert [e.get("kind") for e in console_events] == ["loaded", None]
    assert False, "on purpose"
"""


class RecordingApp(BaseHTTPRequestHandler):
    """Serves PAGE for every path; remembers (path, X-Test-Id) of each request."""

    seen: list[tuple[str, str | None]]

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get(TEST_ID_HEADER)))
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def app() -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
    seen: list[tuple[str, str | None]] = []
    handler = type("Handler", (RecordingApp,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_a_playwright_suite_without_a_conftest_leaves_evidence(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    app: tuple[str, list[tuple[str, str | None]]],
) -> None:
    url, seen = app
    folder = tmp_path / "artifacts"
    monkeypatch.setenv("STACK_BACKEND_URL", url)
    monkeypatch.setenv("STACK_ARTIFACTS_DIR", str(folder))
    monkeypatch.setenv(RUN_ENV, "run-browser")  # as under `ci-stack run`: it finishes later
    pytester.makepyfile(test_app=SUITE)

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=180)

    result.assert_outcomes(passed=2, failed=1)
    ids = {
        name: util.test_id_for(f"test_app.py::{name}[chromium]")
        for name in ("test_root_page_opens", "test_a_context_of_its_own_sends_the_id_too")
    }
    failing = "test_app.py::test_fails_after_logging[chromium]"
    assert ("/", ids["test_root_page_opens"]) in seen
    assert ("/own", ids["test_a_context_of_its_own_sends_the_id_too"]) in seen
    assert ("/failing", util.test_id_for(failing)) in seen
    assert all(test_id for _, test_id in seen), seen  # favicon requests carry it too

    evidence = folder / "tests" / util.test_slug(failing)
    assert (evidence / "trace.zip").is_file(), sorted(p.name for p in folder.rglob("*"))
    assert (evidence / "test-failed-1.png").is_file()
    console = [json.loads(line) for line in (evidence / "console.jsonl").read_text().splitlines()]
    assert [(e["type"], e.get("kind"), e.get("message")) for e in console] == [
        ("log", "loaded", None),
        ("warning", None, "plain words"),
    ]
    assert console[0]["path"] == "/failing" and console[0]["at"].endswith("Z")
    # The report's timeline has the failed test's own steps, from its trace, in order.
    failed = next(t for t in load_run(folder).failures if t.nodeid == failing)
    assert failed.evidence is not None
    steps = [e.text for e in failed.evidence.timeline if e.source == "test"]
    assert steps[0] == "test started" and steps[-1] == "test finished", steps
    assert any(s.startswith("goto /failing · test_app.py:15") for s in steps), steps
    assert any(s.startswith('Expect "to_have_text" #hello "hello"') for s in steps), steps
    assert "✗ failed in call at test_app.py:18" in steps
    assert not any("setExtraHTTPHeaders" in s for s in steps)  # the id is a context header
    passed = folder / "tests" / util.test_slug("test_app.py::test_root_page_opens[chromium]")
    assert not passed.exists()  # retain-on-failure: nothing kept of a passing test


def test_without_pytest_playwright_the_plugin_adds_nothing(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("-p", "no:playwright", "--fixtures", timeout=60)

    assert result.ret == 0
    assert "console_events" not in result.stdout.str()
    assert "stack" in result.stdout.str()  # the stack plugin itself is there


def test_a_console_call_is_its_json_object_or_its_text() -> None:
    assert console_event("log", '{"kind": "x", "n": 1}', "T") == {
        "type": "log",
        "at": "T",
        "kind": "x",
        "n": 1,
    }
    not_an_object = {"type": "error", "at": "T", "message": "[1, 2]"}
    assert console_event("error", "[1, 2]", "T") == not_an_object
    assert console_event("log", "plain", "T") == {"type": "log", "at": "T", "message": "plain"}
