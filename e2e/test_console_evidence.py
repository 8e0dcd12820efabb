"""Console evidence: every API call leaves one structured event carrying its correlation id."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import ConsoleMessage, Page, Response, expect

from e2e.isolation import shared_stack_fixture  # noqa: F401  (the stack lock, autouse)
from e2e.pages import AuditPage, CommandsPage, SendCommandPage, SettingsPage


def _nav_count_loaded(page: Page) -> None:
    """The nav's queue count (one GET /api/stats per page) has been filled."""
    expect(page.get_by_test_id("nav-tsq-count")).to_have_attribute("data-state", "loaded")


def _kind(message: ConsoleMessage, kind: str) -> bool:
    try:
        return json.loads(message.text).get("kind") == kind
    except (ValueError, AttributeError):
        return False


def _path(response: Response) -> str:
    url = urlsplit(response.url)
    return f"{url.path}?{url.query}" if url.query else url.path


def _events(console_events: list[dict[str, Any]], kind: str, correlation_id: str) -> list[Any]:
    return [
        e
        for e in console_events
        if e.get("kind") == kind and e.get("correlation_id") == correlation_id
    ]


def test_each_api_call_logs_one_event_with_the_response_request_id(
    page: Page, console_events: list[dict[str, Any]]
) -> None:
    responses: list[Response] = []
    page.on(
        "response",
        lambda r: responses.append(r) if r.request.resource_type == "fetch" else None,
    )

    # Each page's calls finish (their data is shown) before the next page is opened.
    expect(CommandsPage(page).open("status=COMPLETED&page_size=10").total).to_contain_text(
        "command"
    )
    _nav_count_loaded(page)
    SettingsPage(page).open()
    _nav_count_loaded(page)
    send = SendCommandPage(page).open()
    _nav_count_loaded(page)
    send.fill("success")
    with (
        page.expect_console_message(lambda m: _kind(m, "api_call")) as message_info,
        page.expect_response("**/api/commands") as response_info,
    ):
        send.submit()
    expect(page.get_by_test_id("send-result")).to_be_visible()

    # The last call, caught directly: its event names the X-Request-Id the server echoed.
    posted = response_info.value
    event = json.loads(message_info.value.text)
    assert posted.status == 201
    assert event["correlation_id"] == posted.header_value("X-Request-Id")
    assert (event["method"], event["path"], event["status"]) == ("POST", "/api/commands", 201)

    # Every call of the session: exactly one api_call event per response, and no more events.
    # commands list, config and the live workers' settings, command types, the POST, and each
    # page's nav count
    paths = sorted(urlsplit(r.url).path for r in responses)
    assert paths == sorted(
        ["/api/commands", "/api/config", "/api/config/effective", "/api/command-types"]
        + ["/api/commands"]
        + ["/api/stats"] * 3
    )
    for response in responses:
        request_id = response.header_value("X-Request-Id")
        assert request_id, f"{response.url} has no X-Request-Id"
        assert response.request.header_value("X-Request-Id") == request_id  # minted by the page
        calls = _events(console_events, "api_call", request_id)
        assert len(calls) == 1, f"{response.request.method} {response.url}: {calls}"
        call = calls[0]
        assert call["method"] == response.request.method
        assert call["path"] == _path(response)
        assert call["status"] == response.status
        assert isinstance(call["duration_ms"], int)
        # when it was sent (the report's timeline places it there), before it was logged
        assert datetime.fromisoformat(call["sent_at"]) <= datetime.fromisoformat(call["at"])
    assert len([e for e in console_events if e.get("kind") == "api_call"]) == len(responses)
    # The app's structured events (plain-text console lines carry `message`, not `kind`).
    assert [e for e in console_events if "kind" in e and e["kind"] != "api_call"] == []


def test_a_4xx_logs_an_api_error_event(page: Page, console_events: list[dict[str, Any]]) -> None:
    unknown = str(uuid.uuid4())
    audit = AuditPage(page).open()
    with (
        page.expect_console_message(lambda m: _kind(m, "api_error")) as message_info,
        page.expect_response(lambda r: "/api/audit?" in r.url) as response_info,
    ):
        audit.search(unknown)
    expect(audit.error).to_be_visible()

    response = response_info.value
    assert response.status == 404
    request_id = response.header_value("X-Request-Id")
    assert request_id
    body = response.json()

    event = json.loads(message_info.value.text)
    assert event == {
        "kind": "api_error",
        "method": "GET",
        "path": f"/api/audit?command_id={unknown}",
        "status": 404,
        "code": body["code"],
        "correlation_id": request_id,
        "message": body["error"],
    }
    assert len(_events(console_events, "api_error", request_id)) == 1
    calls = _events(console_events, "api_call", request_id)
    assert [(c["method"], c["status"]) for c in calls] == [("GET", 404)]
    assert [e for e in console_events if e.get("kind") == "js_error"] == []
