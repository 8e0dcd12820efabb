"""LogHarvester against a local SSE server (scripted per connection) and a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from orchestrator.log_harvest import LogHarvester

if TYPE_CHECKING:  # the fixtures module is loaded as a plugin (below), not imported first
    from tests.fixtures.sse_test_server import ScriptHandler as Handler
    from tests.fixtures.sse_test_server import ScriptServer

pytest_plugins = ["tests.fixtures.sse_test_server"]


def url_of(server: ScriptServer) -> str:
    return server.url("/api/testing/logs/stream")


@pytest.fixture
def harvester(tmp_path: Path) -> Iterator[LogHarvester]:
    with LogHarvester(tmp_path / "logs", read_timeout=5, max_backoff=0.2) as h:
        yield h


def wait_for(condition: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.perf_counter() + timeout
    pause = threading.Event()
    while not condition():
        if time.perf_counter() > deadline:
            raise AssertionError(f"gave up after {timeout}s waiting for {what or condition}")
        pause.wait(0.02)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def finished(harvester: LogHarvester, name: str) -> Callable[[], bool]:
    return lambda: name not in harvester.running()


def test_log_records_land_in_order_and_close_stops_the_source(serve, harvester):
    def script(h: Handler, number: int) -> None:
        h.start_sse()
        h.event("connection_open", {"client": number})
        for n in range(3):
            h.log(f"record {n}", n=n)
            h.event("heartbeat", {})
        h.event("connection_close", {})

    server = serve(script)
    path = harvester.add_sse_source("backend", url_of(server))
    wait_for(finished(harvester, "backend"), what="the source to end at connection_close")
    records = lines(path)
    assert [r.get("message") for r in records[:3]] == ["record 0", "record 1", "record 2"]
    assert records[0]["extra"] == {"n": 0}
    assert records[3]["marker"] == "closed" and records[3]["source"] == "backend"
    assert len(records) == 4
    assert server.connections == 1  # no reconnect after connection_close
    assert harvester.tail("backend", 2) == [json.dumps(r) for r in records[2:]]


def test_server_drop_reconnects_and_records_the_gap(serve, harvester):
    def script(h: Handler, number: int) -> None:
        h.start_sse()
        h.event("connection_open", {})
        if number == 0:
            h.log("before")
            h.wfile.write(b'event: log\ndata: {"message": "half')  # then the server goes away
            return
        h.log("after")
        h.event("connection_close", {})

    server = serve(script)
    path = harvester.add_sse_source("backend", url_of(server))
    wait_for(finished(harvester, "backend"))
    before, gap, after, closed = lines(path)
    assert (before["message"], after["message"], closed["marker"]) == ("before", "after", "closed")
    assert gap["marker"] == "gap" and gap["source"] == "backend"
    assert gap["from"] <= gap["to"]
    assert "without connection_close" in gap["reason"]
    assert server.connections == 2


def test_stalled_stream_is_detected_by_the_read_timeout(serve, release, tmp_path):
    def script(h: Handler, number: int) -> None:
        h.start_sse()
        h.event("connection_open", {})
        if number == 0:
            h.event("heartbeat", {})
            release.wait(10)
            return
        h.log("after")
        h.event("connection_close", {})

    with LogHarvester(tmp_path, read_timeout=0.3, max_backoff=0.2) as harvester:
        path = harvester.add_sse_source("backend", url_of(serve(script)))
        wait_for(finished(harvester, "backend"))
    gap, after, _closed = lines(path)
    assert "the server stalled" in gap["reason"]
    assert after["message"] == "after"


def test_failed_connects_back_off_and_end_in_one_gap_marker(serve, harvester):
    def script(h: Handler, number: int) -> None:
        if number < 2:
            h.send_error(503)
            return
        h.start_sse()
        h.log("finally")
        h.event("connection_close", {})

    server = serve(script)
    path = harvester.add_sse_source("backend", url_of(server))
    wait_for(finished(harvester, "backend"))
    gap, record, _closed = lines(path)
    assert (gap["marker"], gap["reason"], gap["attempts"]) == ("gap", "HTTP 503", 2)
    assert record["message"] == "finally"
    assert server.connections == 3


def test_dropped_event_becomes_a_marker(serve, harvester):
    def script(h: Handler, number: int) -> None:
        h.start_sse()
        h.log("one")
        h.event("dropped", {"dropped": 17})
        h.log("two")
        h.event("connection_close", {})

    path = harvester.add_sse_source("backend", url_of(serve(script)))
    wait_for(finished(harvester, "backend"))
    one, dropped, two, _closed = lines(path)
    assert (one["message"], two["message"]) == ("one", "two")
    assert dropped["marker"] == "dropped" and dropped["count"] == 17


def test_secrets_never_reach_the_files(serve, tmp_path):
    secret = 'hunter"2\\ü'  # JSON escaping would hide it from a line-level redact

    def script(h: Handler, number: int) -> None:
        h.start_sse()
        h.log(f"password={secret}", token=secret, nested={"list": [secret]})
        h.event("connection_close", {})

    def redact(text: str) -> str:
        return text.replace(secret, "[REDACTED]")

    logs = tmp_path / "logs"
    with LogHarvester(logs, redact=redact) as harvester:
        sse_path = harvester.add_sse_source("backend", url_of(serve(script)))
        harvester.add_stream_source("worker", iter([f"token {secret}\n".encode()]))
        wait_for(lambda: not harvester.running())
        assert secret not in "".join(harvester.tail("backend") + harvester.tail("worker"))
    for path in logs.iterdir():
        text = path.read_text(encoding="utf-8")
        assert secret not in text
        assert json.dumps(secret)[1:-1] not in text  # nor its JSON-escaped form
        assert "[REDACTED]" in text
    record = lines(sse_path)[0]
    assert record["message"] == "password=[REDACTED]"
    assert record["extra"] == {"token": "[REDACTED]", "nested": {"list": ["[REDACTED]"]}}


def test_stream_source_copies_subprocess_output_as_it_arrives(harvester):
    # The child prints one line, then waits: the line must be in the file before it goes on.
    code = "import sys; print('one', flush=True); sys.stdin.readline(); print('two')"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        path = harvester.add_stream_source("child", proc.stdout)
        wait_for(lambda: harvester.tail("child") == ["one"], what="the first line")
        assert path.read_text() == "one\n"
        proc.stdin.write(b"go\n")
        proc.stdin.close()
        assert proc.wait(timeout=10) == 0
        wait_for(finished(harvester, "child"), what="EOF")
    finally:
        proc.kill()
        proc.wait()
    assert path.read_text() == "one\ntwo\n"


def test_stop_returns_within_its_bound_when_the_server_stalls(serve, release, tmp_path):
    opened = threading.Event()

    def script(h: Handler, number: int) -> None:
        h.start_sse()
        h.event("connection_open", {})
        h.log("only")
        opened.set()
        release.wait(30)

    harvester = LogHarvester(tmp_path, read_timeout=30)
    path = harvester.add_sse_source("backend", url_of(serve(script)))
    assert opened.wait(5)
    wait_for(lambda: harvester.tail("backend") != [], what="the first record")
    started = time.perf_counter()
    assert harvester.stop(timeout=2) == []
    assert time.perf_counter() - started < 2.5
    assert [r["message"] for r in lines(path)] == ["only"]


def test_stop_is_bounded_even_while_a_connect_hangs(serve, release, tmp_path):
    # The server never answers: the connect cannot be interrupted, but stop() still returns.
    reached = threading.Event()

    def script(h: Handler, number: int) -> None:
        reached.set()
        release.wait(30)

    harvester = LogHarvester(tmp_path, read_timeout=30)
    harvester.add_sse_source("backend", url_of(serve(script)))
    assert reached.wait(5)
    started = time.perf_counter()
    assert harvester.stop(timeout=0.5) == ["backend"]
    assert time.perf_counter() - started < 1.5


def test_tail_of_an_unknown_source_names_the_known_ones(harvester):
    harvester.add_stream_source("worker", iter(["a\n", "b\n", "c"]))
    wait_for(finished(harvester, "worker"))
    assert harvester.tail("worker", 2) == ["b", "c"]
    with pytest.raises(KeyError, match="known: worker"):
        harvester.tail("nope")


def test_one_service_can_have_a_stream_and_an_sse_source(serve, harvester):
    def script(h: Handler, number: int) -> None:
        h.start_sse()
        h.event("connection_open", {"client": number})
        h.log("from the stream")
        h.event("connection_close", {})

    jsonl = harvester.add_sse_source("backend", url_of(serve(script)))
    log = harvester.add_stream_source("backend", iter([b"stdout line\n"]))
    wait_for(lambda: not harvester.running(), what="both sources to end")
    assert (jsonl.name, log.name) == ("backend.jsonl", "backend.log")
    assert lines(jsonl)[0]["message"] == "from the stream"
    assert log.read_text() == "stdout line\n"
    assert harvester.tail("backend") == ["stdout line"]  # the stream wins for error tails


def test_a_full_disk_never_blocks_the_child_and_is_reported(tmp_path: Path) -> None:
    """The log file hits ENOSPC (here: it is /dev/full): the harvester keeps draining the
    child's pipe, so the child finishes; the loss is reported, the tail still works."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "chatty.log").symlink_to("/dev/full")
    lines = 50_000  # ~5 MB: far more than a pipe buffer holds
    child = subprocess.Popen(
        [sys.executable, "-c", f"for i in range({lines}): print('x' * 100, i, flush=False)"],
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None
    harvester = LogHarvester(logs, run_id="run-1")
    try:
        harvester.add_stream_source("chatty", child.stdout)

        assert child.wait(timeout=60) == 0  # it was never blocked on a full pipe
        wait_for(lambda: "chatty" not in harvester.running(), 30, "the source to drain")
    finally:
        harvester.stop()

    problems = harvester.incomplete()
    assert list(problems) == ["chatty.log"]
    assert "No space left on device" in problems["chatty.log"]
    assert f"{lines} line(s) dropped" in problems["chatty.log"]
    assert harvester.tail("chatty", 1) == [f"{'x' * 100} {lines - 1}"]


def test_records_are_stamped_with_the_run_id_and_files_hold_one_run(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    for run in ("first", "second"):
        with LogHarvester(logs, run_id=run) as harvester:
            harvester.add_stream_source("svc", [f'{{"message": "from {run}"}}', "plain text"])
            wait_for(lambda h=harvester: "svc" not in h.running(), 5, "the source")

    written = (logs / "svc.log").read_text().splitlines()
    assert written == ['{"message": "from second", "run_id": "second"}', "plain text"]
