"""The worker's JSON lines: written by hand for speed, the same text as json.dumps would write."""

from __future__ import annotations

import json
import logging
import random
import sys
from datetime import UTC, datetime
from typing import Any

import pytest

from backend.utils.log_capture import record_to_dict, utc_stamp
from backend.utils.logging_setup import JsonLineFormatter


def _record(msg: str, args: tuple[Any, ...] = (), extra: dict[str, Any] | None = None,
            exc: Any = None, **attrs: Any) -> logging.LogRecord:  # fmt: skip
    record = logging.getLogger("x").makeRecord(
        "n\u00e9v\u2028", logging.WARNING, "f.py", 1, msg, args, exc, extra=extra
    )
    for name, value in attrs.items():
        setattr(record, name, value)
    return record


def _exc_info() -> Any:
    try:
        raise ZeroDivisionError("boom")
    except ZeroDivisionError:
        return sys.exc_info()


@pytest.mark.parametrize(
    "record",
    [
        _record("plain"),
        _record('uni \u00e9 \u0000 "q" \n %s \ud800', ("arg",)),
        _record("x", extra={"command_id": "abc", "n": 3, "obj": object(), "l": [1, {"a": None}]}),
        _record("e", exc=_exc_info()),
        _record("e2", exc=_exc_info(), extra={"k": "v"}),
        _record("ids", correlation_id="corr", test_id="t\u00e9"),
        _record("odd ids", correlation_id=123, test_id=None),
        _record("s", extra={"a\u00e9": 'b"', "_hidden": 1, "z": "y"}, command_id="cid"),
    ],
    ids=["plain", "escapes", "extras", "exception", "exception-extra", "ids", "odd", "order"],
)
def test_line_is_json_dumps_of_the_record_dict(record: logging.LogRecord) -> None:
    line = JsonLineFormatter().format(record)
    assert line == json.dumps(record_to_dict(record), default=str)
    assert "\n" not in line


def test_extras_keep_their_order_and_hide_private_names() -> None:
    record = _record("s", extra={"b": "1", "_hidden": 1, "a": "2"}, command_id="c")
    assert list(json.loads(JsonLineFormatter().format(record))["extra"]) == ["b", "a", "command_id"]


def test_stamp_matches_datetime_to_the_millisecond() -> None:
    rng = random.Random(7)
    stamps = [0.0, 1.9995, 1735787045.678, *(rng.uniform(0, 2e9) for _ in range(20_000))]
    for created in stamps:
        expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        assert utc_stamp(created) == expected.replace("+00:00", "Z"), created
