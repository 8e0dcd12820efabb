"""SSE framing (`format_sse_event`) and open-stream counting (`ActiveStreams`)."""

from __future__ import annotations

import json
import threading
from collections.abc import Generator, Iterator
from typing import cast

import pytest

from backend.utils.sse import ActiveStreams, format_sse_event


def parse_frame(frame: str) -> tuple[str, list[str]]:
    """(event name, data lines) of one frame; asserts it is a single blank-line-ended frame."""
    assert frame.endswith("\n\n"), f"frame is not blank-line terminated: {frame!r}"
    lines = frame[:-2].split("\n")
    assert lines[0].startswith("event: "), lines
    assert all(line.startswith("data: ") for line in lines[1:]), lines
    return lines[0][len("event: ") :], [line[len("data: ") :] for line in lines[1:]]


def test_frame_has_event_line_then_data_line_then_blank_line():
    assert format_sse_event("heartbeat", "ping") == "event: heartbeat\ndata: ping\n\n"


def test_multi_line_string_data_becomes_one_data_line_per_line():
    frame = format_sse_event("log", "first\nsecond\r\nthird\rfourth")
    assert parse_frame(frame) == ("log", ["first", "second", "third", "fourth"])


def test_dict_payload_is_json_with_ids_added():
    frame = format_sse_event("progress", {"step": 1}, correlation_id="cid-1", test_id="t-1")
    event, data = parse_frame(frame)
    assert event == "progress"
    assert len(data) == 1
    assert json.loads(data[0]) == {"step": 1, "correlation_id": "cid-1", "test_id": "t-1"}


def test_dict_payload_keeps_its_own_ids_and_skips_unknown_test_id():
    frame = format_sse_event("progress", {"correlation_id": "mine"}, correlation_id="other")
    assert json.loads(parse_frame(frame)[1][0]) == {"correlation_id": "mine"}


def test_dict_payload_is_not_mutated():
    payload = {"step": 2}
    format_sse_event("progress", payload, correlation_id="cid")
    assert payload == {"step": 2}


def test_non_dict_non_string_payload_is_json():
    assert parse_frame(format_sse_event("list", [1, 2]))[1] == ["[1, 2]"]


@pytest.mark.parametrize("name", ["bad\nname", "bad\rname", ""])
def test_event_name_must_be_one_non_empty_line(name):
    with pytest.raises(ValueError, match="SSE event name"):
        format_sse_event(name, "x")


def started(streams: ActiveStreams, label: str) -> Generator[str, None, None]:
    """A tracked stream whose first frame went out (a generator counts once it runs)."""
    frames = cast(Generator[str, None, None], streams.track(iter(["first", "second"]), label))
    assert next(frames) == "first"
    return frames


def test_active_streams_counts_running_streams_by_label():
    streams = ActiveStreams()
    logs = started(streams, "log stream")
    version = started(streams, "version stream")
    assert streams.count == 2
    assert streams.open_streams() == ["log stream", "version stream"]
    assert streams.wait_all_closed(timeout=0.01) is False
    logs.close()
    assert streams.open_streams() == ["version stream"]
    version.close()
    assert streams.count == 0
    assert streams.wait_all_closed(timeout=0.01) is True


def test_track_counts_nothing_until_the_response_starts_iterating():
    streams = ActiveStreams()
    streams.track(iter(["a"]))
    assert streams.count == 0


def test_track_releases_a_stream_that_runs_to_its_end():
    streams = ActiveStreams()
    frames = started(streams, "s")
    assert list(frames) == ["second"]
    assert streams.count == 0


def test_track_releases_a_stream_the_client_abandons():
    streams = ActiveStreams()
    frames = started(streams, "s")
    frames.close()  # what the WSGI server does when the client disconnects
    assert streams.count == 0


def test_track_releases_a_stream_whose_generator_fails():
    def failing() -> Iterator[str]:
        yield "ok"
        raise RuntimeError("source broke")

    streams = ActiveStreams()
    frames = streams.track(failing())
    assert next(frames) == "ok"
    with pytest.raises(RuntimeError, match="source broke"):
        next(frames)
    assert streams.count == 0


def test_wait_all_closed_wakes_when_another_thread_closes_the_last_stream():
    streams = ActiveStreams()
    frames = started(streams, "s")
    closer = threading.Timer(0.05, frames.close)
    closer.start()
    try:
        assert streams.wait_all_closed(timeout=5) is True
    finally:
        closer.cancel()
        closer.join()
    assert streams.count == 0
