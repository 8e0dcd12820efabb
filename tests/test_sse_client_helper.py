"""SSEParser against hand-written streams; SSEClient against a tiny local HTTP server."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.integration.sse_client_helper import (
    SSEClient,
    SSEFrame,
    SSEParser,
    SSEProtocolError,
    SSEStreamClosed,
    SSETimeout,
    record_clients,
)

if TYPE_CHECKING:  # the fixtures module is loaded as a plugin (below), not imported first
    from tests.fixtures.sse_test_server import Script as ServerScript
    from tests.fixtures.sse_test_server import ScriptHandler as Handler
    from tests.fixtures.sse_test_server import ScriptServer

pytest_plugins = ["tests.fixtures.sse_test_server"]

# -- parser ------------------------------------------------------------------------------------


def parse(*chunks: bytes | str, strict: bool = True) -> list[SSEFrame]:
    parser = SSEParser(strict=strict)
    return [frame for chunk in chunks for frame in parser.feed(chunk)]


def test_single_event_defaults_to_message():
    [frame] = parse(b'data: {"a": 1}\n\n')
    assert (frame.event, frame.data, frame.id, frame.retry) == ("message", '{"a": 1}', "", None)
    assert frame.raw == 'data: {"a": 1}'


def test_named_event_and_multi_line_data():
    [frame] = parse("event: log\ndata: one\ndata: two\ndata:\n\n")
    assert frame.event == "log"
    assert frame.data == "one\ntwo\n"


def test_only_one_leading_space_is_stripped():
    frames = parse("data:x\n\ndata:  x\n\ndata\n\n")
    assert [f.data for f in frames] == ["x", " x", ""]


def test_comments_are_ignored_and_comment_blocks_not_dispatched():
    frames = parse(": keep-alive\n\n: note\ndata: a\n: more\n\n")
    assert [f.data for f in frames] == ["a"]
    assert frames[0].raw == ": note\ndata: a\n: more"


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_line_endings(eol):
    text = f"event: a{eol}data: 1{eol}data: 2{eol}{eol}data: 3{eol}{eol}"
    frames = parse(text)
    assert [(f.event, f.data) for f in frames] == [("a", "1\n2"), ("message", "3")]


def test_mixed_line_endings():
    frames = parse("data: 1\r\ndata: 2\rdata: 3\n\r\n")
    assert [f.data for f in frames] == ["1\n2\n3"]


def test_every_split_point_gives_the_same_events():
    stream = "event: e\r\ndata: é1\r\n: c\r\ndata: 2\r\n\r\nid: 7\rdata: 3\r\r"
    expected = parse(stream.encode())
    assert [f.data for f in expected] == ["é1\n2", "3"]
    raw = stream.encode()
    for cut in range(len(raw) + 1):
        assert parse(raw[:cut], raw[cut:]) == expected, f"split at byte {cut}"


def test_crlf_split_across_chunks_is_one_line_end():
    # A CR ending one chunk and an LF opening the next must not make an extra blank line.
    assert [f.data for f in parse("data: a\r", "\ndata: b\r", "\n\r", "\n")] == ["a\nb"]


def test_byte_by_byte_feed():
    raw = "data: ü€\r\n\r\n".encode()
    assert parse(*(raw[i : i + 1] for i in range(len(raw))))[0].data == "ü€"


def test_bom_is_dropped_once():
    assert [f.data for f in parse(b"\xef\xbb", b"\xbfdata: a\n\n")] == ["a"]


def test_id_persists_and_retry_is_read():
    frames = parse("id: 1\nretry: 1500\ndata: a\n\ndata: b\n\nid: x\0y\ndata: c\n\n")
    assert [(f.id, f.retry) for f in frames] == [("1", 1500), ("1", None), ("1", None)]


def test_id_or_retry_only_blocks_are_not_dispatched_but_remembered():
    parser = SSEParser()
    assert parser.feed("id: 9\nretry: 250\n\nretry: soon\n\n") == []
    assert (parser.last_event_id, parser.retry) == ("9", 250)


def test_unknown_field_is_ignored_in_both_modes():
    for strict in (True, False):
        assert [f.data for f in parse("foo: bar\ndata: a\n\n", strict=strict)] == ["a"]


def test_named_event_without_data_strict_raises():
    with pytest.raises(SSEProtocolError, match="'log' has no data line") as info:
        parse("event: log\n\n")
    assert info.value.raw == "event: log"
    assert isinstance(info.value, ValueError)


def test_named_event_without_data_lenient_is_skipped_with_warning(caplog):
    skipped: list[tuple[str, str]] = []
    parser = SSEParser(strict=False, on_malformed=lambda reason, raw: skipped.append((reason, raw)))
    with caplog.at_level(logging.WARNING, logger="orchestrator.sse_client"):
        frames = parser.feed("event: log\n\ndata: next\n\n")
    assert [f.data for f in frames] == ["next"]
    assert skipped == [("event 'log' has no data line", "event: log")]
    assert "no data line" in caplog.text


def test_non_sse_line_strict_raises_and_lenient_ignores():
    stream = 'data: a\n\n{"not": "sse"}\ndata: b\n\n'
    with pytest.raises(SSEProtocolError, match="is not an SSE field"):
        parse(stream)
    assert [f.data for f in parse(stream, strict=False)] == ["a", "b"]


def test_strict_error_keeps_earlier_frames_and_parser_can_go_on():
    parser = SSEParser()
    with pytest.raises(SSEProtocolError) as info:
        parser.feed("data: a\n\nevent: x\n\ndata: b\n\n")
    assert [f.data for f in info.value.frames] == ["a"]
    assert [f.data for f in parser.feed("")] == ["b"]


def test_finish_discards_and_returns_the_partial_event():
    parser = SSEParser()
    assert [f.data for f in parser.feed("data: done\n\nevent: log\ndata: half")] == ["done"]
    assert parser.finish() == "event: log\ndata: half"
    assert parser.feed("\n\n") == []  # the tail of a discarded event dispatches nothing


# -- a tiny streaming server -------------------------------------------------------------------

Script = Callable[["Handler"], None]


@pytest.fixture
def serve(serve: Callable[[ServerScript], ScriptServer]) -> Callable[[Script], str]:
    """The shared `serve`, for scripts that take only the handler; returns the stream URL."""
    return lambda script: serve(lambda h, _number: script(h)).url("/stream")


def frames_script(*frames: str, chunked: bool = False) -> Script:
    def script(h: Handler) -> None:
        h.start_sse(chunked=chunked)
        for frame in frames:
            h.send(frame)
        if chunked:
            h.end_chunks()

    return script


# -- client ------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["close-delimited", "chunked"])
def test_client_collects_decoded_events(serve, chunked):
    url = serve(
        frames_script(
            "event: connection_open\ndata: {}\n\n",
            ': hi\r\nevent: log\r\ndata: {"n": 1,\r\ndata:  "m": "x"}\r\n\r\n',
            "data: [1, 2]\r\r",
            chunked=chunked,
        )
    )
    with SSEClient(url, timeout=5) as client:
        events = client.collect_until_close(timeout=5)
        assert client.status_code == 200
        assert client.response_headers["Content-Type"] == "text/event-stream"
    assert events == [
        {"event": "connection_open", "data": {}},
        {"event": "log", "data": {"n": 1, "m": "x"}},
        {"event": "message", "data": [1, 2]},
    ]


def test_iterating_stops_at_the_end_of_the_stream(serve):
    url = serve(frames_script("data: 1\n\n", "data: 2\n\n"))
    with SSEClient(url, timeout=5) as client:
        assert [event["data"] for event in client] == [1, 2]
        with pytest.raises(SSEStreamClosed, match="server ended the response"):
            client.next_event()


def test_bad_json_strict_raises(serve):
    url = serve(frames_script("data: 1\n\n", "event: log\ndata: not json\n\n"))
    with SSEClient(url, timeout=5) as client:
        assert client.next_event()["data"] == 1
        with pytest.raises(ValueError, match="'log' data is not JSON"):
            client.next_event()


def test_bad_json_lenient_yields_the_raw_string(serve):
    url = serve(frames_script("event: log\ndata: not json\n\n"))
    with SSEClient(url, strict=False, timeout=5) as client:
        assert client.collect_until_close() == [{"event": "log", "data": "not json"}]


def test_missing_data_strict_raises_and_lenient_skips(serve):
    url = serve(frames_script("event: ping\n\n", "data: 2\n\n"))
    with SSEClient(url, timeout=5) as client, pytest.raises(ValueError, match="no data line"):
        client.next_event()
    with SSEClient(url, strict=False, timeout=5) as client:
        assert client.collect_until_close() == [{"event": "message", "data": 2}]
        assert [e["kind"] for e in client.transcript if e["kind"] == "skipped"] == ["skipped"]


def test_non_sse_response_is_diagnosed_in_strict_mode(serve):
    def script(h: Handler) -> None:
        h.start_sse(status=500, ctype="text/html")
        h.send("<h1>Internal Server Error</h1>")

    with SSEClient(serve(script), timeout=5) as client:
        assert client.status_code == 500
        with pytest.raises(SSEProtocolError, match="HTTP 500 'text/html'") as info:
            client.next_event()
    assert "Internal Server Error" in info.value.raw


def test_connection_closed_mid_event_discards_the_partial_event(serve):
    url = serve(frames_script("data: 1\n\n", "event: log\ndata: {"))
    with SSEClient(url, timeout=5) as client:
        assert client.collect_until_close() == [{"event": "message", "data": 1}]
    partial = [e for e in client.transcript if e["kind"] == "partial"]
    assert partial == [{"t": partial[0]["t"], "kind": "partial", "raw": "event: log\ndata: {"}]


def test_stalled_server_raises_sse_timeout_fast(serve, release):
    def script(h: Handler) -> None:
        h.start_sse()
        h.send("event: connection_open\ndata: {}\n\n")
        release.wait(10)

    url = serve(script)
    started = time.perf_counter()
    with SSEClient(url, timeout=0.5) as client:
        assert client.next_event()["event"] == "connection_open"
        with pytest.raises(SSETimeout) as info:
            client.next_event(timeout=5)  # the read timeout (0.5 s) fires first
    assert time.perf_counter() - started < 2
    message = str(info.value)
    assert "read timeout" in message
    assert url in message
    assert "0.5s" in message
    assert "1 events received so far (last: connection_open)" in message
    assert isinstance(info.value, TimeoutError)


def test_server_that_never_answers_times_out_on_open(serve, release):
    url = serve(lambda h: release.wait(10) and None)
    started = time.perf_counter()
    with pytest.raises(SSETimeout, match="Could not open"), SSEClient(url, timeout=0.5):
        pass
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize("chunked", [False, True], ids=["close-delimited", "chunked"])
def test_event_is_delivered_before_the_stream_ends(serve, chunked):
    # One small event, then the server waits on `go`: the client must see it first.
    go = threading.Event()
    finished = threading.Event()

    def script(h: Handler) -> None:
        h.start_sse(chunked=chunked)
        h.send('event: log\ndata: {"n": 1}\n\n')
        go.wait(10)
        h.send("data: 2\n\n")
        if chunked:
            h.end_chunks()
        finished.set()

    with SSEClient(serve(script), timeout=5) as client:
        assert client.next_event(timeout=3) == {"event": "log", "data": {"n": 1}}
        assert not finished.is_set()
        go.set()
        assert client.collect_until_close(timeout=3) == [{"event": "message", "data": 2}]


def heartbeats(release: threading.Event, names: tuple[str, ...] = ()) -> Script:
    def script(h: Handler) -> None:
        h.start_sse()
        for name in names:
            h.send(f"event: {name}\ndata: {{}}\n\n")
        while not release.wait(0.05):  # server pacing, not test synchronisation
            h.send("event: heartbeat\ndata: {}\n\n")

    return script


def test_events_until_by_name_and_predicate(serve, release):
    url = serve(heartbeats(release, ("connection_open", "log", "done")))
    with SSEClient(url, timeout=5) as client:
        assert [e["event"] for e in client.events_until("log")] == ["connection_open", "log"]
        assert client.events_until(lambda e: e["event"] == "heartbeat")[-1]["event"] == "heartbeat"


def test_events_until_deadline_holds_while_heartbeats_flow(serve, release):
    with SSEClient(serve(heartbeats(release)), timeout=5) as client:
        started = time.perf_counter()
        with pytest.raises(SSETimeout, match=r"While waiting 0\.5s for event 'never'"):
            client.events_until("never", timeout=0.5)
        assert time.perf_counter() - started < 1.5
        assert client.next_event()["event"] == "heartbeat"  # the stream is still usable


def test_events_until_stream_end_raises_stream_closed(serve):
    url = serve(frames_script("data: 1\n\n"))
    with SSEClient(url, timeout=5) as client, pytest.raises(SSEStreamClosed, match="ended before"):
        client.events_until("never")


def test_collect_until_close_times_out_on_an_endless_stream(serve, release):
    url = serve(heartbeats(release))
    with SSEClient(url, timeout=5) as client, pytest.raises(SSETimeout, match="end of the stream"):
        client.collect_until_close(timeout=0.3)


def test_close_from_another_thread_wakes_a_waiting_reader(serve, release):
    with SSEClient(serve(heartbeats(release, ("open",))), timeout=5) as client:
        assert client.next_event()["event"] == "open"
        threading.Thread(target=client.close).start()
        started = time.perf_counter()
        with pytest.raises(SSEStreamClosed):
            client.events_until("never", timeout=5)
        assert time.perf_counter() - started < 2


def test_transcript_records_frames_events_and_offsets(serve, tmp_path: Path):
    url = serve(frames_script('id: 4\nevent: log\ndata: {"n": 1}\n\n', ": bye\n\n"))
    closed: list[SSEClient] = []
    with record_clients() as recorded, SSEClient(url, timeout=5, on_close=closed.append) as client:
        client.collect_until_close()
    assert recorded == [client]
    assert closed == [client]
    kinds = [entry["kind"] for entry in client.transcript]
    assert kinds == ["open", "event", "end", "close"]
    opened, event = client.transcript[:2]
    assert opened["status"] == 200 and opened["url"] == url
    assert event == {
        "t": event["t"],
        "kind": "event",
        "event": "log",
        "data": {"n": 1},
        "id": "4",
        "raw": 'id: 4\nevent: log\ndata: {"n": 1}',
    }
    offsets = [entry["t"] for entry in client.transcript]
    assert offsets == sorted(offsets) and offsets[0] >= 0
    path = client.write_transcript(tmp_path / "sse" / "client.jsonl")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["url"] == url
    assert lines[1:] == client.transcript
    assert "event: log" in client.transcript_text()
