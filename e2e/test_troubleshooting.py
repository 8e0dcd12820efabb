"""Troubleshooting queue: failed commands with their errors, and the operator's actions on them."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import Page, expect

from e2e.isolation import shared_stack_fixture  # noqa: F401  (the stack lock, autouse)
from e2e.pages import (
    PHONE,
    CommandDetailPage,
    SendCommandPage,
    TroubleshootingPage,
    expect_no_horizontal_overflow,
    expect_status,
    flash_messages,
    send_via_api,
    short_id,
    wait_until,
)

TSQ = "IN_TROUBLESHOOTING_QUEUE"


def _failed_command(
    page: Page, api: requests.Session, code: str, execution_time_ms: int = 0
) -> str:
    """A fail_permanent command, watched until it sits in the TSQ."""
    command_id = send_via_api(
        api,
        "fail_permanent",
        error_code=code,
        error_message=f"{code} from the e2e suite",
        execution_time_ms=execution_time_ms,
    )
    wait_until(page, command_id, TSQ)
    return command_id


def test_failed_command_is_listed_with_its_error(page: Page, api: requests.Session) -> None:
    command_id = _failed_command(page, api, "E2E_LISTED")
    tsq = TroubleshootingPage(page).open()
    row = tsq.row(command_id)
    expect(row.get_by_test_id("tsq-error-code")).to_have_text("E2E_LISTED")
    expect(row.get_by_test_id("tsq-error-message")).to_have_text("E2E_LISTED from the e2e suite")
    link = row.get_by_test_id("tsq-command-link")
    expect(link).to_have_attribute("href", f"/commands/{command_id}")
    expect(link).to_have_text(short_id(command_id))
    # The nav's badge counts the queue the page shows.
    total = int(page.get_by_test_id("tsq-total").inner_text().split()[0])
    expect(tsq.nav_count).to_have_attribute("data-state", "loaded")
    assert int(tsq.nav_count.inner_text()) == total


def _live_max_attempts(api: requests.Session) -> int:
    """The max_attempts the stack's live workers use (what the API checks a send against)."""
    report = api.get("/api/config/effective")
    report.raise_for_status()
    return min(worker["effective"]["max_attempts"] for worker in report.json()["workers"])


def test_command_sent_to_exhaust_its_attempts_completes_after_a_retry_from_the_queue(
    page: Page, api: requests.Session
) -> None:
    """The queue's central scenario, from the UI: as many transient failures as attempts.
    The Send page accepts it and says it will reach the queue; the operator's retry from the
    Troubleshooting page goes on counting, so the next delivery completes it."""
    attempts = _live_max_attempts(api)
    send = SendCommandPage(page).open()
    command_id = send.send("fail_transient_then_succeed", transient_failures=str(attempts))
    expect(send.result_note).to_be_visible()
    expect(send.result_note).to_have_attribute("data-expected", "troubleshooting_queue")
    expect(send.result_note).to_contain_text(f"max_attempts {attempts}")
    expect(send.result_note).to_contain_text("will reach the troubleshooting queue")
    expect(page.get_by_test_id("send-error")).to_be_hidden()

    detail = CommandDetailPage(page).open(command_id).wait_for_status(TSQ)
    expect(detail.attempts).to_have_text(f"{attempts} / {attempts}")
    tsq = TroubleshootingPage(page).open()
    expect(tsq.row(command_id).get_by_test_id("tsq-error-code")).to_have_text("TRANSIENT_ERROR")
    tsq.act(command_id, "retry")
    expect(flash_messages(page, "success").first).to_contain_text(
        f"Retry: command {short_id(command_id)} is now Pending."
    )

    detail = CommandDetailPage(page).open(command_id).wait_for_status("COMPLETED")
    expect(detail.audit_event_types.last).to_have_text("COMPLETED")
    retries = page.locator('[data-testid="audit-event"][data-event-type="OPERATOR_RETRY"]')
    expect(retries).to_have_count(1)
    expect(page.get_by_test_id("command-result")).to_contain_text(f'"attempt": {attempts + 1}')


def test_bulk_that_will_reach_the_queue_is_sent_with_the_note(
    page: Page, api: requests.Session, test_id: str
) -> None:
    attempts = _live_max_attempts(api)
    send = SendCommandPage(page).open()
    send.fill("fail_transient_then_succeed", transient_failures=str(attempts))
    page.get_by_test_id("bulk-count").fill("2")
    page.get_by_test_id("bulk-submit").click()
    expect(page.get_by_test_id("bulk-state")).to_have_text("completed")
    expect(page.get_by_test_id("bulk-error")).to_be_hidden()
    expect(send.bulk_notes).to_have_count(1)
    note = send.bulk_notes.first
    expect(note).to_have_attribute("data-expected", "troubleshooting_queue")
    expect(note).to_contain_text("2 command(s)")
    expect(note).to_contain_text("will reach the troubleshooting queue")
    sent = api.get("/api/commands", params={"test_id": test_id, "page_size": "1"})
    assert sent.json()["total"] == 2


def test_retry_sends_it_back_and_it_fails_again(page: Page, api: requests.Session) -> None:
    # 1.5 s of work keeps the retried command out of the TSQ while the page reloads the list.
    command_id = _failed_command(page, api, "E2E_RETRY", execution_time_ms=1500)
    tsq = TroubleshootingPage(page).open()
    expect(tsq.row(command_id)).to_be_visible()

    tsq.act(command_id, "retry")
    expect(flash_messages(page, "success").first).to_contain_text(
        f"Retry: command {short_id(command_id)} is now Pending."
    )
    expect(tsq.row(command_id)).to_have_count(0)

    detail = CommandDetailPage(page).open(command_id).wait_for_status(TSQ)
    expect(detail.audit_event_types).to_have_text(
        ["SENT", "RECEIVED", "MOVED_TO_TSQ", "OPERATOR_RETRY", "RECEIVED", "MOVED_TO_TSQ"]
    )
    TroubleshootingPage(page).open()
    expect(tsq.row(command_id).get_by_test_id("tsq-error-code")).to_have_text("E2E_RETRY")


@pytest.mark.parametrize(
    ("action", "status", "label", "event"),
    [
        ("cancel", "CANCELED", "Canceled", "OPERATOR_CANCEL"),
        ("complete", "COMPLETED", "Completed", "OPERATOR_COMPLETE"),
    ],
)
def test_row_action_resolves_the_command(
    page: Page, api: requests.Session, action: str, status: str, label: str, event: str
) -> None:
    command_id = _failed_command(page, api, f"E2E_{action.upper()}")
    tsq = TroubleshootingPage(page).open()
    expect(tsq.row(command_id)).to_be_visible()

    tsq.act(command_id, action)
    expect(flash_messages(page, "success").first).to_contain_text(
        f"{action.capitalize()}: command {short_id(command_id)} is now {label}."
    )
    expect(tsq.row(command_id)).to_have_count(0)

    detail = CommandDetailPage(page).open(command_id)
    expect_status(detail.status, status)
    expect(detail.audit_event_types.last).to_have_text(event)


def test_bulk_cancel_of_two_selected_rows(page: Page, api: requests.Session) -> None:
    first = _failed_command(page, api, "E2E_BULK_A")
    second = _failed_command(page, api, "E2E_BULK_B")
    tsq = TroubleshootingPage(page).open()
    tsq.select(first)
    tsq.select(second)
    expect(page.get_by_test_id("tsq-selected-count")).to_have_text("2 selected")

    # The confirmation can be declined: nothing happens.
    tsq.bulk("cancel", confirm=False)
    expect(page.get_by_test_id("tsq-bulk-results")).to_be_hidden()
    expect(page.get_by_test_id("tsq-selected-count")).to_have_text("2 selected")
    expect(tsq.row(first)).to_be_visible()

    page.get_by_test_id("tsq-bulk-cancel").click()
    expect(page.get_by_test_id("confirm-title")).to_have_text("Cancel 2 commands?")
    page.get_by_test_id("confirm-accept").click()
    for command_id in (first, second):
        result = tsq.bulk_result(command_id)
        expect(result).to_have_attribute("data-ok", "true")
        expect(result).to_have_text(f"{short_id(command_id)} · Canceled")
        expect(tsq.row(command_id)).to_have_count(0)
    expect(page.get_by_test_id("tsq-bulk-result")).to_have_count(2)
    expect(flash_messages(page).first).to_contain_text("Cancel selected: 2 succeeded, 0 failed.")
    expect(page.get_by_test_id("tsq-selected-count")).to_have_text("0 selected")

    for command_id in (first, second):
        expect_status(CommandDetailPage(page).open(command_id).status, "CANCELED")


def test_acting_on_a_command_that_left_the_tsq_shows_the_409(
    page: Page, api: requests.Session
) -> None:
    command_id = _failed_command(page, api, "E2E_GONE")
    tsq = TroubleshootingPage(page).open()
    expect(tsq.row(command_id)).to_be_visible()

    # Behind the UI's back: someone else cancels it.
    assert api.post(f"/api/tsq/{command_id}/cancel", json={}).status_code == 200
    refused = api.post(f"/api/tsq/{command_id}/retry", json={})
    assert refused.status_code == 409
    message = refused.json()["error"]

    with page.expect_response(f"**/api/tsq/{command_id}/retry") as response_info:
        tsq.act(command_id, "retry")
    assert response_info.value.status == 409
    error = flash_messages(page, "error").first
    expect(error).to_contain_text(message)
    expect(error).to_have_attribute("role", "alert")
    expect(tsq.row(command_id)).to_have_count(0)  # the list was reloaded after the action


def test_phone_layout_keeps_error_and_actions_on_screen(page: Page, api: requests.Session) -> None:
    command_id = _failed_command(page, api, "E2E_PHONE")
    page.set_viewport_size(PHONE)
    tsq = TroubleshootingPage(page).open()
    row = tsq.row(command_id)
    expect(row).to_have_css("display", "grid")
    row.scroll_into_view_if_needed()
    for testid in ("tsq-error-code", "tsq-error-message", "tsq-retry", "tsq-cancel", "tsq-select"):
        expect(row.get_by_test_id(testid)).to_be_in_viewport()
    expect_no_horizontal_overflow(page)
