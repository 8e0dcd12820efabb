"""index.html in a real Chromium: from file:// (the demo failure, a green run) and served by
`python -m orchestrator report`, whose "View trace" opens Playwright's trace viewer."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from orchestrator import util  # not its test_* names: pytest would collect them
from orchestrator.artifacts import Artifacts, RunInfo, finish_run
from orchestrator.cli import main
from orchestrator.redaction import Redactor
from orchestrator.report_server import ReportServer
from tests.fixtures.chromium import launched_chromium
from tests.fixtures.orchestrator_cli import run_cli

DEMO_NODEID = "e2e/test_demo_failure.py::test_demo_failure_expects_the_wrong_status[chromium]"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as chromium:
        yield chromium


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real red run: the README's demo failure under `orchestrator run` (local provider)."""
    folder = tmp_path_factory.mktemp("demo") / "artifacts"
    result = run_cli(
        "run", "--provider", "local", "--artifacts", str(folder), "--",
        sys.executable, "-m", "pytest", "e2e/test_demo_failure.py",
        "-p", "no:cacheprovider",
        env={"E2E_DEMO_FAILURE": "1"}, timeout=180,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    return folder


@pytest.mark.slow
@pytest.mark.e2e
def test_the_demo_failure_report_explains_the_failure_from_file_url(
    demo_folder: Path, page: Page
) -> None:
    page.goto((demo_folder / "index.html").as_uri())

    failure = page.locator("article.failure").first
    expect(failure.locator("h3")).to_contain_text(DEMO_NODEID)
    expect(failure.locator("pre.message")).to_contain_text(
        "Locator expected to have attribute 'COMPLETED'"
    )
    expect(failure.locator("pre.longrepr")).to_contain_text("expect_status(detail.status")
    screenshot = failure.locator(".shot img")
    expect(screenshot).to_be_visible()
    assert screenshot.evaluate("img => img.complete && img.naturalWidth > 0")
    expect(failure.locator("code.rerun")).to_have_text(f"nox -s e2e -- '{DEMO_NODEID}'")
    rows = failure.locator("table.timeline tbody tr")
    sources = rows.locator("td.src").all_inner_texts()
    assert "browser" in sources
    assert "backend" in sources
    assert any(source.startswith("worker-") for source in sources)
    assert "access" in sources  # the backend's own record of each request the test made
    # The POST once as the browser saw it and once as the backend's access record.
    posts = rows.filter(has_text="POST /api/commands → 201")
    expect(posts).to_have_count(2)
    assert sorted(posts.locator("td.src").all_inner_texts()) == ["access", "browser"]
    expect(rows.filter(has_text="moved to troubleshooting queue")).to_have_count(1)
    # One correlation id links the browser's POST to the backend's send and the worker's run.
    post = posts.filter(has=page.locator("td.src", has_text="browser"))
    post.locator(".cid").click()
    linked = failure.locator("table.timeline tbody tr.hit td.src").all_inner_texts()
    assert {"browser", "access", "backend"} <= set(linked)
    assert any(source.startswith("worker-") for source in linked)
    expect(failure.locator("table.timeline tbody tr.dim").first).to_be_attached()
    # The test itself: its start, each Playwright step where the test made it, the failing
    # assertion, the moment pytest saw it fail, and its end.
    steps = rows.filter(has=page.locator("td.src", has_text="test"))
    expect(steps.first).to_contain_text("test started")
    expect(steps.last).to_contain_text("test finished")
    expect(steps.filter(has_text="goto /send")).to_have_count(1)
    expect(steps.filter(has_text='click get_by_test_id("send-submit")')).to_have_count(1)
    failing = steps.filter(has_text='Expect "to_have_attribute"')
    expect(failing).to_have_count(1)
    expect(failing).to_contain_text("✗ Expect failed")
    expect(failing).to_contain_class("lv-error")
    expect(steps.filter(has_text="✗ failed in call at e2e/pages.py")).to_have_count(1)
    # The browser's POST sits where it was sent: before the backend's record of it.
    texts = [" ".join(t.split()) for t in rows.all_inner_texts()]
    sent = next(i for i, t in enumerate(texts) if "browser" in t and "POST /api/commands" in t)
    served = next(i for i, t in enumerate(texts) if "access" in t and "POST /api/commands" in t)
    assert sent < served, texts
    expect(failure.get_by_text("Actual value: IN_TROUBLESHOOTING_QUEUE")).to_have_count(1)
    # Every record behind the timeline is this test's, of this run.
    test_id = util.test_id_for(DEMO_NODEID)
    run_id = json.loads((demo_folder / "run.json").read_text())["run_id"]
    evidence = demo_folder / "tests" / util.test_slug(DEMO_NODEID)
    for sliced in [*evidence.glob("backend.jsonl"), *evidence.glob("worker-*.jsonl")]:
        for line in sliced.read_text().splitlines():
            record = json.loads(line)
            assert record["test_id"] == test_id, sliced
            assert record.get("run_id", run_id) == run_id, sliced
    first_row = page.locator("#tests tbody tr").first
    expect(first_row).to_contain_text(DEMO_NODEID)
    expect(first_row).to_contain_text("e2e/test_demo_failure.py:15")  # where the test is defined


def _green_folder(tmp_path: Path) -> Path:
    artifacts = Artifacts(tmp_path / "green", Redactor()).create()
    outcomes = [("test_a", "passed"), ("test_b", "passed"), ("test_c", "skipped")]
    for line, (name, outcome) in enumerate(outcomes, start=3):
        entry = {"nodeid": f"e2e/test_green.py::{name}", "outcome": outcome,
                 "duration": 0.25, "location": f"e2e/test_green.py:{line}"}  # fmt: skip
        artifacts.append_line("results.jsonl", json.dumps(entry))
    run = RunInfo(run_id="run-green", provider="docker", verdict="passed", command_status=0,
                  timings={"db ready": 0.4, "total": 1.8})  # fmt: skip
    finish_run(artifacts, run)
    return artifacts.root


@pytest.mark.parametrize("width", [1440, 390])  # at 390 px each row is a wrapped block
def test_a_green_report_lists_every_test_and_filters_them(
    tmp_path: Path, browser: Browser, width: int
) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto((_green_folder(tmp_path) / "index.html").as_uri())

    expect(page.locator("header h1")).to_contain_text("passed")
    expect(page.locator("header")).to_contain_text("run-green")
    expect(page.locator("#failures")).to_have_count(0)
    rows = page.locator("#tests tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("e2e/test_green.py:3")
    page.locator(".filters button", has_text="skipped").click()
    expect(page.locator("#tests tbody tr:visible")).to_have_count(1)
    expect(page.locator("#tests tbody tr:visible")).to_contain_text("test_c")
    page.locator(".filters button", has_text="all").click()
    page.locator("#search").fill("test_b")
    expect(page.locator("#tests tbody tr:visible")).to_have_count(1)
    expect(page.locator("#shown")).to_have_text("1 of 3 shown")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    context.close()


def _folder_with_a_trace(tmp_path: Path, browser: Browser) -> Path:
    nodeid = "e2e/test_t.py::test_traced"
    artifacts = Artifacts(tmp_path / "traced", Redactor()).create()
    context = browser.new_context()
    context.tracing.start(snapshots=True)
    traced = context.new_page()
    traced.set_content("<button onclick=\"this.textContent='clicked'\">press me</button>")
    traced.get_by_role("button", name="press me").click()
    context.tracing.stop(path=artifacts.test_dir(nodeid) / "trace.zip")
    context.close()
    entry = {"nodeid": nodeid, "outcome": "failed", "message": "AssertionError: no"}
    artifacts.append_line("results.jsonl", json.dumps(entry))
    finish_run(artifacts, RunInfo(run_id="run-t", provider="local", verdict="failed"))
    return artifacts.root


@pytest.mark.slow
def test_view_trace_opens_the_trace_viewer_when_served(
    tmp_path: Path, browser: Browser, page: Page
) -> None:
    folder = _folder_with_a_trace(tmp_path, browser)
    page.goto((folder / "index.html").as_uri())
    expect(page.locator(".trace-hint")).to_contain_text("python -m orchestrator report")

    with ReportServer(folder) as server:
        page.goto(server.url + "index.html")
        link = page.locator("a.trace")
        expect(link).to_have_text("View trace")
        with page.context.expect_page() as opened:
            link.click()
        viewer = opened.value

        expect(viewer.get_by_text("press me").first).to_be_visible(timeout=30_000)
        assert "/trace/index.html" in viewer.url


def test_report_refuses_a_folder_without_a_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path)]) == 2

    [line] = capsys.readouterr().err.splitlines()
    assert f"{tmp_path} has no index.html" in line
    assert "Fix:" in line


def test_the_report_subcommand_takes_its_own_options(tmp_path: Path) -> None:
    result = run_cli("report", "--no-open", str(tmp_path), timeout=30)

    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"ci-stack report: {tmp_path} has no index.html")


def _red_folder_with_long_lines(tmp_path: Path, browser: Browser) -> Path:
    """A failed test with a real trace (a long URL among its steps), its start, failure and
    end, and a log record with one very long unbroken word."""
    nodeid = "e2e/test_t.py::test_a_long_timeline_line"
    artifacts = Artifacts(tmp_path / "long", Redactor()).create()
    folder = artifacts.test_dir(nodeid)
    context = browser.new_context()
    context.tracing.start(snapshots=True)
    traced = context.new_page()
    started = datetime.now(UTC)
    traced.goto("data:text/html,<p id=status>FAILED</p><!--" + "x" * 300 + "-->")
    with pytest.raises(AssertionError):
        expect(traced.locator("#status")).to_have_text("COMPLETED", timeout=200)
    failed = datetime.now(UTC)
    context.tracing.stop(path=folder / "trace.zip")
    context.close()
    message = "AssertionError: Locator expected to have text 'COMPLETED'\nActual value: FAILED"
    entry = {
        "nodeid": nodeid, "outcome": "failed", "phase": "call", "message": message,
        "longrepr": ">       expect(status).to_have_text('COMPLETED')\n"
        + "".join(f"E       {line}\n" for line in message.splitlines()) + "\ne2e/test_t.py:9: X",
        "crash": "e2e/test_t.py:9", "location": "e2e/test_t.py:5", "duration": 1.25,
        "started_at": _iso(started), "failed_at": _iso(failed),
        "finished_at": _iso(failed + timedelta(milliseconds=40)),
    }  # fmt: skip
    artifacts.append_line("results.jsonl", json.dumps(entry))
    (folder / "test.json").write_text(json.dumps(entry))
    record = {"timestamp": _iso(started + timedelta(milliseconds=5)), "level": "WARNING",
              "message": "token=" + "A" * 400, "correlation_id": "c0ffee12-aaaa-bbbb"}  # fmt: skip
    (folder / "backend.jsonl").write_text(json.dumps(record) + "\n")
    (artifacts.root / "pytest-session.json").write_text('{"seconds": 1.304}')
    began = _iso(started - timedelta(seconds=3))
    run = RunInfo(run_id="run-long", provider="local", verdict="failed", app="demo",
                  started_at=began, finished_at=_iso(failed))  # fmt: skip
    finish_run(artifacts, run)
    return artifacts.root


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_a_red_report_shows_the_tests_steps_and_wraps_at_390_px(
    tmp_path: Path, browser: Browser
) -> None:
    folder = _red_folder_with_long_lines(tmp_path, browser)
    for width in (1440, 390):
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        page.goto((folder / "index.html").as_uri())

        card = page.locator("article.failure")
        rows = card.locator("table.timeline tbody tr")
        steps = rows.filter(has=page.locator("td.src", has_text="test"))
        expect(steps.filter(has_text="goto data:text/html")).to_have_count(1)
        expect(steps.filter(has_text='Expect "to_have_text" #status "COMPLETED"')).to_have_count(1)
        expect(steps.filter(has_text="test started")).to_have_count(1)
        expect(steps.filter(has_text="✗ failed in call at e2e/test_t.py:9")).to_have_count(1)
        sources = rows.locator("td.src").all_inner_texts()
        assert sources[0] == "test" and sources[-1] == "test"  # started … finished
        assert "backend" in sources
        expect(card.get_by_text("Actual value: FAILED")).to_have_count(1)  # the error once
        expect(page.locator("header")).to_contain_text("duration 1.30s")
        width_used = page.evaluate("document.documentElement.scrollWidth")
        assert width_used <= width, f"{width_used} px wide at a {width} px viewport"
        context.close()
