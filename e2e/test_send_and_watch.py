"""Send Command and Dashboard: commands sent from the UI end as the seed's behavior table says."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, expect

from e2e.isolation import shared_stack_fixture  # noqa: F401  (the stack lock, autouse)
from e2e.pages import (
    SETTLE_MS,
    SETTLE_SLOW_MS,
    CommandDetailPage,
    DashboardPage,
    SendCommandPage,
    at_least,
    expect_status,
    id_from_href,
    send_via_api,
    short_id,
)

ATTEMPTS_OF_3 = r" / 3$"  # the stack's stored config keeps the default max_attempts of 3


def _commands_of_this_test(api: requests.Session, test_id: str) -> int:
    response = api.get("/api/commands", params={"test_id": test_id, "page_size": "1"})
    response.raise_for_status()
    return int(response.json()["total"])


def test_success_completes_in_one_attempt(page: Page) -> None:
    command_id = SendCommandPage(page).open().send("success", payload='{"order_id": 42}')
    detail = CommandDetailPage(page).open(command_id).wait_for_status("COMPLETED")
    expect(detail.attempts).to_have_text(re.compile("^1" + ATTEMPTS_OF_3))
    expect(page.get_by_test_id("command-payload")).to_contain_text('"order_id": 42')
    expect(page.get_by_test_id("command-result")).to_contain_text('"status": "ok"')


def test_fail_permanent_lands_in_tsq_with_its_error(page: Page) -> None:
    command_id = (
        SendCommandPage(page)
        .open()
        .send("fail_permanent", error_code="CARD_DECLINED", error_message="The card was declined")
    )
    detail = CommandDetailPage(page).open(command_id).wait_for_status("IN_TROUBLESHOOTING_QUEUE")
    expect(detail.attempts).to_have_text(re.compile("^1" + ATTEMPTS_OF_3))
    expect(page.get_by_test_id("command-error-code")).to_have_text("CARD_DECLINED")
    expect(page.get_by_test_id("command-error-message")).to_have_text("The card was declined")
    expect(detail.audit_event_types.last).to_have_text("MOVED_TO_TSQ")


def test_fail_transient_exhausts_three_attempts(page: Page) -> None:
    command_id = SendCommandPage(page).open().send("fail_transient")
    detail = CommandDetailPage(page).open(command_id)
    detail.wait_for_status("IN_TROUBLESHOOTING_QUEUE")
    expect(detail.attempts).to_have_text("3 / 3")
    expect(page.get_by_test_id("command-error-code")).to_have_text("TRANSIENT_ERROR")
    failed = page.locator('[data-testid="audit-event"][data-event-type="FAILED"]')
    expect(failed).to_have_count(2)  # attempts 1 and 2; the 3rd moves it to the TSQ


def test_fail_transient_then_succeed_completes_on_third_attempt(page: Page) -> None:
    command_id = (
        SendCommandPage(page).open().send("fail_transient_then_succeed", transient_failures="2")
    )
    detail = CommandDetailPage(page).open(command_id).wait_for_status("COMPLETED")
    expect(detail.attempts).to_have_text("3 / 3")
    expect(page.get_by_test_id("command-result")).to_contain_text('"attempt": 3')


def test_timeout_is_redelivered_and_completes(page: Page) -> None:
    # 6 s of work outlives the 5 s visibility timeout: the message is delivered again.
    command_id = SendCommandPage(page).open().send("timeout", execution_time_ms="6000")
    detail = CommandDetailPage(page).open(command_id)
    detail.wait_for_status("COMPLETED", timeout=SETTLE_SLOW_MS)
    expect(detail.attempts).to_have_text(re.compile(r"^([2-9]|\d{2,})" + ATTEMPTS_OF_3))
    attempts = int(detail.attempts.inner_text().split(" / ")[0])
    received = page.locator('[data-testid="audit-event"][data-event-type="RECEIVED"]')
    expect(received).to_have_count(attempts)  # one delivery per attempt


@pytest.mark.parametrize(
    ("behavior", "fields", "field_testid", "message"),
    [
        pytest.param(
            "fail_transient_then_succeed",
            {"transient_failures": "101"},
            "transient-failures",
            "less than or equal to 100",
            id="transient-failures-above-100",
        ),
        pytest.param(
            "success",
            {"execution_time_ms": "-1"},
            "execution-time-ms",
            "greater than or equal to 0",
            id="negative-execution-time",
        ),
    ],
)
def test_invalid_behavior_shows_field_error_and_sends_nothing(
    page: Page,
    api: requests.Session,
    test_id: str,
    console_events: list[dict[str, Any]],
    behavior: str,
    fields: dict[str, str],
    field_testid: str,
    message: str,
) -> None:
    send = SendCommandPage(page).open()
    send.fill(behavior, **fields).submit()
    expect(send.field_error(field_testid)).to_contain_text(message)
    expect(page.get_by_test_id(field_testid)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_test_id("send-error")).to_be_visible()
    expect(page.get_by_test_id("send-result")).to_be_hidden()
    errors = [e for e in console_events if e.get("kind") == "api_error"]
    assert [(e["method"], e["path"], e["status"]) for e in errors] == [
        ("POST", "/api/commands", 400)
    ]
    assert _commands_of_this_test(api, test_id) == 0


def test_bad_payload_json_is_refused_before_sending(
    page: Page, api: requests.Session, test_id: str, console_events: list[dict[str, Any]]
) -> None:
    send = SendCommandPage(page).open()
    send.fill("success", payload='{"order_id": ').submit()
    expect(send.field_error("payload")).to_be_visible()
    expect(page.get_by_test_id("send-error")).to_have_text("Payload is not valid JSON.")
    expect(page.get_by_test_id("send-result")).to_be_hidden()
    posts = [e for e in console_events if e.get("method") == "POST"]
    assert posts == []
    assert _commands_of_this_test(api, test_id) == 0


def _send_invalid_bulk(page: Page) -> SendCommandPage:
    send = SendCommandPage(page).open()
    send.fill("fail_transient_then_succeed", transient_failures="101")
    page.get_by_test_id("bulk-count").fill("3")
    page.get_by_test_id("bulk-submit").click()
    expect(page.get_by_test_id("bulk-error")).to_be_visible()
    return send


def test_invalid_bulk_shows_field_error_and_sends_nothing(
    page: Page, api: requests.Session, test_id: str
) -> None:
    send = _send_invalid_bulk(page)
    expect(send.field_error("transient-failures")).to_contain_text("less than or equal to 100")
    expect(page.get_by_test_id("bulk-panel")).to_be_hidden()
    assert _commands_of_this_test(api, test_id) == 0


def test_invalid_bulk_error_names_the_field_that_was_sent(page: Page) -> None:
    _send_invalid_bulk(page)
    message = page.get_by_test_id("bulk-error").inner_text()
    assert message.startswith("Invalid behavior.transient_failures:"), message


def test_bulk_send_of_50_reaches_100_percent_and_completes(page: Page) -> None:
    dashboard = DashboardPage(page).open()
    completed_before = dashboard.stat_value("completed")

    send = SendCommandPage(page).open()
    send.send_bulk("success", 50)
    expect(page.get_by_test_id("bulk-state")).to_have_text("completed", timeout=SETTLE_MS)
    expect(page.get_by_test_id("bulk-progress")).to_have_js_property("value", 1)
    expect(page.get_by_test_id("bulk-sent")).to_have_text("50 / 50")
    expect(page.get_by_test_id("bulk-result")).to_have_text("Sent 50 of 50 commands.")
    expect(page.get_by_test_id("bulk-task-id")).to_have_text(re.compile(r"^[0-9a-f]{32}$"))

    DashboardPage(page).open()
    expect(dashboard.stat("completed")).to_have_text(
        at_least(completed_before + 50), timeout=SETTLE_MS
    )


QUICK_ACTIONS = (
    "success",
    "fail_permanent",
    "fail_transient",
    "fail_transient_then_succeed",
    "timeout",
)


# Where each quick action's command settles with the stack's worker settings.
SETTLED = {
    "success": "COMPLETED",
    "fail_permanent": "IN_TROUBLESHOOTING_QUEUE",
    "fail_transient_then_succeed": "COMPLETED",  # no failures asked: completes at once
    "timeout": "COMPLETED",  # 0 ms of work: completes at once
}


def test_dashboard_quick_actions_create_commands_and_stats_update(page: Page) -> None:
    dashboard = DashboardPage(page).open()
    completed_before = dashboard.stat_value("completed")

    for behavior in QUICK_ACTIONS:
        dashboard.quick_action(behavior).click()
        result = dashboard.quick_results(behavior)
        expect(result).to_have_count(1)
        link = result.get_by_test_id("quick-action-link")
        command_id = result.get_attribute("data-command-id") or ""
        expect(link).to_have_text(short_id(command_id))
        assert id_from_href(link) == command_id
    expect(page.get_by_test_id("quick-action-result")).to_have_count(len(QUICK_ACTIONS))
    # Newest first.
    expect(page.get_by_test_id("quick-action-result").first).to_have_attribute(
        "data-behavior", QUICK_ACTIONS[-1]
    )

    # The results follow their commands live to where they settle (fail_transient is still
    # retrying; test_fail_transient_* covers it), and the cards count them.
    for behavior, status in SETTLED.items():
        status_badge = dashboard.quick_results(behavior).get_by_test_id("quick-action-status")
        expect_status(status_badge, status, timeout=SETTLE_MS)
    expect(dashboard.stat("completed")).to_have_text(
        at_least(completed_before + 3), timeout=SETTLE_MS
    )

    dashboard.quick_results("success").get_by_test_id("quick-action-link").click()
    expect(page).to_have_url(re.compile(r"/commands/[0-9a-f-]{36}$"))
    CommandDetailPage(page).wait_for_status("COMPLETED")


def test_dashboard_cards_link_to_the_filtered_commands(page: Page) -> None:
    dashboard = DashboardPage(page).open()
    dashboard.stat_value("in-tsq")
    page.get_by_test_id("stat-card-in-tsq").click()
    expect(page).to_have_url(re.compile(r"/commands\?(.*&)?status=IN_TROUBLESHOOTING_QUEUE"))
    expect(page.get_by_test_id("filter-status")).to_have_value("IN_TROUBLESHOOTING_QUEUE")
    # One name for the queue: the card, the nav and the status filter all say it.
    expect(page.get_by_test_id("nav-tsq")).to_contain_text("Troubleshooting queue")
    expect(page.get_by_test_id("filter-status").locator("option:checked")).to_have_text(
        "Troubleshooting queue"
    )


def test_recent_activity_rows_open_their_command(page: Page, api: requests.Session) -> None:
    send_via_api(api, "success")  # the list is not empty, whatever else runs meanwhile
    DashboardPage(page).open()
    items = page.get_by_test_id("activity-item")
    expect(items.first).to_be_visible()
    expect(page.get_by_test_id("activity-skeleton")).to_have_count(0)
    expect(page.get_by_test_id("activity-empty")).to_be_hidden()
    command_id = items.first.get_attribute("data-command-id") or ""
    # The list is live (newest first); pick this item by its id. It holds still under the
    # pointer (the page skips refreshes while hovered), so the click lands on it.
    item = page.locator(f'[data-testid="activity-item"][data-command-id="{command_id}"]')
    expect(item.get_by_test_id("activity-link")).to_have_text(short_id(command_id))
    expect(item.get_by_test_id("activity-status")).to_have_attribute(
        "data-status", re.compile(r"^[A-Z_]+$")
    )

    item.locator("time").click()  # the whole item is the link
    expect(page).to_have_url(re.compile(rf"/commands/{command_id}$"))
