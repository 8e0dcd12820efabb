"""A test's own steps from a real Playwright trace (real Chromium, a tiny local server), and
a request the page logs late placed at the moment it was sent."""

from __future__ import annotations

import itertools
import json
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from orchestrator.artifacts.timeline import console_entry, merge, record_entry, step_entry
from orchestrator.artifacts.trace_steps import read_steps, readable_selector
from orchestrator.pytest_browser import console_event
from tests.fixtures.chromium import launched_chromium

LOG_DELAY_MS = 700  # the page logs its request this long after the response

PAGE = b"""<!doctype html><title>steps</title>
<button id=go onclick="this.textContent='done'">go</button>
<script>
async function call() {
  const sentAt = new Date().toISOString();
  const response = await fetch("/api/slow-log");
  await new Promise(resolve => setTimeout(resolve, DELAY));
  console.info(JSON.stringify({kind: "api_call", method: "GET", path: "/api/slow-log",
    status: response.status, sent_at: sentAt, correlation_id: "c-late"}));
}
</script>""".replace(b"DELAY", str(LOG_DELAY_MS).encode())


class App(BaseHTTPRequestHandler):
    received: list[datetime]

    def do_GET(self) -> None:
        if self.path.startswith("/api/"):
            self.received.append(datetime.now(UTC))
            body, kind = b"{}", "application/json"
        else:
            body, kind = PAGE, "text/html"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@dataclass(frozen=True)
class Server:
    url: str
    received: list[datetime]


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    received: list[datetime] = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (App,), {"received": received}))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", received)
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_chromium() as chromium:
        yield chromium


@dataclass(frozen=True)
class Traced:
    path: Path
    before: datetime  # wall clock just before the first action
    after: datetime  # and just after the last one
    lines: dict[str, int]  # action -> the line of this file that made it


@pytest.fixture(scope="module")
def traced(browser: Browser, server: Server, tmp_path_factory: pytest.TempPathFactory) -> Traced:
    path = tmp_path_factory.mktemp("trace") / "trace.zip"
    context = browser.new_context()
    context.tracing.start(screenshots=True, snapshots=True, sources=True)
    page = context.new_page()
    before = datetime.now(UTC)
    page.goto(server.url + "/")  # step: goto
    page.click("#go")  # step: click
    expect(page.locator("#go")).to_have_text("done")  # step: passes
    with pytest.raises(AssertionError):
        expect(page.locator("#go")).to_have_text("not this", timeout=300)  # step: fails
    after = datetime.now(UTC)
    context.tracing.stop(path=str(path))
    context.close()
    source = Path(__file__).read_text().splitlines()
    lines = {
        line.rsplit("# step: ", 1)[1]: number
        for number, line in enumerate(source, start=1)
        if "  # step: " in line and "for" not in line
    }
    return Traced(path, before, after, lines)


def test_a_real_trace_gives_each_action_and_assertion_in_order(traced: Traced) -> None:
    steps = [s for s in read_steps(traced.path) if s.name != "newPage"]

    expect_text = 'Expect "to_have_text"'
    assert [s.name for s in steps] == ["goto", "click", expect_text, expect_text]
    goto, click, passes, fails = steps
    assert goto.detail.endswith("/") and click.detail == "#go"
    assert passes.detail == '#go "done"' and fails.detail == '#go "not this"'
    here = Path(__file__).name
    assert [s.location for s in steps] == [
        f"{here}:{traced.lines[k]}" for k in ("goto", "click", "passes", "fails")
    ]
    assert [s.error for s in steps[:3]] == [None, None, None]
    assert fails.error is not None and 'unexpected value "done"' in fails.error


def test_the_steps_are_anchored_to_utc_within_the_wall_clock_around_them(traced: Traced) -> None:
    steps = [s for s in read_steps(traced.path) if s.name != "newPage"]
    slack = timedelta(milliseconds=50)  # two clocks (driver, test) read a moment apart

    for earlier, later in itertools.pairwise(steps):
        assert earlier.ended_at is not None and earlier.ended_at <= later.started_at
    assert traced.before - slack <= steps[0].started_at
    last_end = steps[-1].ended_at
    assert last_end is not None and last_end <= traced.after + slack
    assert steps[-1].duration_ms is not None and steps[-1].duration_ms >= 300  # its timeout
    entry = step_entry(steps[-1])
    assert entry.level == "error" and entry.at is not None and entry.at.endswith("Z")
    assert datetime.fromisoformat(entry.at) - steps[-1].started_at < timedelta(milliseconds=1)


def test_a_missing_or_broken_trace_gives_no_steps(traced: Traced, tmp_path: Path) -> None:
    whole = traced.path.read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(whole[: len(whole) // 2])
    not_a_zip = tmp_path / "text.zip"
    not_a_zip.write_text("not a zip")
    no_trace = tmp_path / "other.zip"
    with zipfile.ZipFile(no_trace, "w") as archive:
        archive.writestr("readme.txt", "hello")
    garbage = tmp_path / "garbage.zip"
    with zipfile.ZipFile(garbage, "w") as archive:
        archive.writestr("trace.trace", '{"type":"before", broken\n\x00\xff[1,2]\n"text"\n')
        archive.writestr("trace.stacks", "[not json")
    bad_member = tmp_path / "bad-member.zip"  # a member whose compressed data is damaged
    with zipfile.ZipFile(bad_member, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("trace.trace", json.dumps({"type": "context-options"}) * 2000)
    data = bytearray(bad_member.read_bytes())
    data[60:90] = b"\x00" * 30
    bad_member.write_bytes(bytes(data))

    for path in (tmp_path / "absent.zip", truncated, not_a_zip, no_trace, garbage, bad_member):
        assert read_steps(path) == [], path.name


def test_a_call_without_an_anchor_is_left_out_and_one_never_returned_is_kept(
    tmp_path: Path,
) -> None:
    events = [
        {"type": "before", "callId": "c1", "startTime": 5.0, "method": "goto", "params": {}},
        {"type": "context-options", "wallTime": 1_800_000_000_000, "monotonicTime": 10.0},
        {"type": "before", "callId": "c2", "startTime": 20.0, "method": "click",
         "params": {"selector": "#a"}},
    ]  # fmt: skip
    path = tmp_path / "trace.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("trace.trace", "\n".join(json.dumps(e) for e in events))

    steps = read_steps(path)

    assert [(s.name, s.detail, s.ended_at) for s in steps] == [("click", "#a", None)]
    assert steps[0].started_at == datetime(2027, 1, 15, 8, 0, 0, 10_000, tzinfo=UTC)


def test_a_request_the_page_logs_late_sits_where_it_was_sent(
    browser: Browser, server: Server
) -> None:
    context = browser.new_context()
    page = context.new_page()
    events: list[dict[str, object]] = []
    page.on("console", lambda m: events.append(console_event(m.type, m.text, _now())))
    page.goto(server.url + "/")
    server.received.clear()
    with page.expect_console_message(timeout=10_000):
        page.evaluate("call()")
    context.close()

    (event,) = events
    (received,) = server.received
    logged = datetime.fromisoformat(str(event["at"]))
    assert logged - received >= timedelta(milliseconds=LOG_DELAY_MS - 50)  # logged late
    browser_entry = console_entry(event)
    assert browser_entry.at is not None and browser_entry.at == event["sent_at"]
    sent = datetime.fromisoformat(browser_entry.at)
    assert sent <= received + timedelta(milliseconds=20)  # sent before the server had it
    access = record_entry(
        "web",
        {"timestamp": received.isoformat().replace("+00:00", "Z"), "message": "request",
         "extra": {"method": "GET", "path": "/api/slow-log", "status": 200}},
    )  # fmt: skip
    assert [e.source for e in merge([access, browser_entry])] == ["browser", "access"]


def test_an_event_without_a_readable_send_time_keeps_the_time_it_was_logged() -> None:
    logged = {"type": "info", "kind": "api_call", "at": "2026-01-01T00:00:03.000Z"}

    assert console_entry({**logged, "sent_at": "soon"}).at == logged["at"]
    assert console_entry(logged).at == logged["at"]
    assert console_entry({**logged, "sent_at": "2026-01-01T00:00:01.000Z"}).at == (
        "2026-01-01T00:00:01.000Z"
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_merge_orders_by_instant_whatever_the_stamp_precision() -> None:
    coarse = record_entry("web", {"timestamp": "2026-01-01T00:00:02Z", "message": "b"})
    fine = record_entry("web", {"timestamp": "2026-01-01T00:00:01.999Z", "message": "a"})
    offset = record_entry("web", {"timestamp": "2026-01-01T01:00:01.500+01:00", "message": "0"})
    untimed = record_entry("web", {"message": "none"})

    assert [e.text for e in merge([coarse, fine, offset, untimed])] == ["none", "0", "a", "b"]


def test_playwrights_internal_selectors_read_as_the_locators_a_test_writes() -> None:
    assert readable_selector('internal:testid=[data-testid="send-submit"s]') == (
        'get_by_test_id("send-submit")'
    )
    assert readable_selector('internal:role=button[name="Send"i] >> nth=0') == (
        'get_by_role("button", name="Send") >> nth=0'
    )
    assert readable_selector('internal:text="Done"i') == 'get_by_text("Done")'
    assert readable_selector("#status") == "#status"
