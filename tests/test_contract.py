"""The names the backend shares with the orchestrator are the contract's: the backend keeps
its own copies (it must not import the orchestrator), pinned here."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from backend.utils import correlation, sse
from backend.utils.log_capture import record_to_dict
from orchestrator import contract

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_headers_match_the_contract() -> None:
    assert correlation.TEST_ID_HEADER == contract.TEST_ID_HEADER
    assert correlation.REQUEST_ID_HEADER == contract.REQUEST_ID_HEADER


def test_lifecycle_event_names_match_the_contract() -> None:
    assert sse.CONNECTION_OPEN == contract.EVENT_CONNECTION_OPEN
    assert sse.HEARTBEAT == contract.EVENT_HEARTBEAT
    assert sse.CONNECTION_CLOSE == contract.EVENT_CONNECTION_CLOSE


def test_log_records_have_exactly_the_contract_keys() -> None:
    record = logging.LogRecord("backend.x", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    record.correlation_id = "c-1"
    record.test_id = "t-1"

    data = record_to_dict(record)

    assert tuple(data) == contract.RECORD_KEYS
    assert data[contract.RECORD_TEST_ID] == "t-1"
    assert data[contract.RECORD_CORRELATION_ID] == "c-1"


def test_the_log_stream_emits_only_contract_event_names() -> None:
    source = (REPO_ROOT / "backend" / "api" / "stream_generators.py").read_text()
    emitted = set(re.findall(r'(?:frame|format_sse_event)\(\s*"([a-z_]+)"', source))

    assert {contract.EVENT_LOG, contract.EVENT_DROPPED} <= emitted
    assert emitted <= set(contract.LOG_STREAM_EVENTS) | {"task_event", "version", "error"}


def test_the_web_ui_stamps_each_request_event_with_the_contracts_send_time() -> None:
    """The page logs a request after its response; the report's timeline places it at
    `sent_at`, which the page takes before it sends."""
    app_js = (REPO_ROOT / "backend" / "web" / "static" / "app.js").read_text()
    api = app_js[app_js.index("async function api(") :]
    api = api[: api.index("\n  }\n")]

    assert f"{contract.CONSOLE_SENT_AT}: sentAt," in api
    assert api.index("const sentAt = new Date().toISOString();") < api.index("await fetch(")
