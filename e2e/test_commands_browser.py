"""Commands browser: filters, pagination, filters in the URL, and the way into a command.

Every test sends its commands with a command type of its own, so the filters match exactly
what it created whatever else is in the database (other tests run at the same time).
"""

from __future__ import annotations

import re
import uuid

import pytest
import requests
from playwright.sync_api import Page, expect

from e2e.isolation import shared_stack_fixture  # noqa: F401  (the stack lock, autouse)
from e2e.pages import (
    PHONE,
    CommandDetailPage,
    CommandsPage,
    expect_no_horizontal_overflow,
    expect_status,
    send_via_api,
    short_id,
    wait_until,
)


@pytest.fixture
def command_type(api: requests.Session) -> str:
    """A fresh command type in the workers' domain (they handle every type of their domain)."""
    name = f"Browse{uuid.uuid4().hex[:10]}"
    response = api.post(
        "/api/command-types",
        json={"domain": "test", "name": name, "description": "e2e commands browser"},
    )
    assert response.status_code == 201, response.text
    return name


def test_status_filter_shows_only_matching_rows(
    page: Page, api: requests.Session, command_type: str
) -> None:
    completed = [send_via_api(api, "success", command_type) for _ in range(2)]
    failed = send_via_api(api, "fail_permanent", command_type)
    for command_id in completed:
        wait_until(page, command_id, "COMPLETED")
    wait_until(page, failed, "IN_TROUBLESHOOTING_QUEUE")

    commands = CommandsPage(page).open()
    commands.filter(status="COMPLETED", command_type=command_type)
    expect(commands.total).to_have_text("2 commands")
    expect(commands.rows).to_have_count(2)
    assert sorted(commands.row_ids()) == sorted(completed)
    for row in commands.rows.all():
        expect(row).to_have_attribute("data-status", "COMPLETED")
        expect_status(row.get_by_test_id("command-row-status"), "COMPLETED")

    commands.filter(status="IN_TROUBLESHOOTING_QUEUE", command_type=command_type)
    expect(commands.total).to_have_text("1 command")
    expect(commands.rows).to_have_count(1)
    expect(commands.row(failed)).to_have_attribute("data-status", "IN_TROUBLESHOOTING_QUEUE")

    # The filters live in the URL: a reload shows the same selection.
    expect(page).to_have_url(re.compile(r"[?&]status=IN_TROUBLESHOOTING_QUEUE(&|$)"))
    page.reload()
    expect(page.get_by_test_id("filter-status")).to_have_value("IN_TROUBLESHOOTING_QUEUE")
    expect(page.get_by_test_id("filter-command-type")).to_have_value(command_type)
    expect(commands.rows).to_have_count(1)
    expect(commands.row(failed)).to_be_visible()

    commands.filter(status="CANCELED", command_type=command_type)
    expect(commands.total).to_have_text("0 commands")
    expect(page.get_by_test_id("commands-empty")).to_be_visible()


def test_pagination_and_filters_survive_reload(
    page: Page, api: requests.Session, command_type: str
) -> None:
    sent = {send_via_api(api, "success", command_type) for _ in range(25)}
    commands = CommandsPage(page).open()
    commands.filter(command_type=command_type, page_size=10)
    expect(commands.total).to_have_text("25 commands")
    expect(commands.range).to_have_text("Showing 1–10 of 25")  # noqa: RUF001
    expect(commands.page_info).to_have_text("Page 1 of 3")
    expect(page.get_by_test_id("page-number")).to_have_text(["1", "2", "3"])
    expect(commands.page_number(1)).to_have_attribute("aria-current", "page")
    expect(commands.rows).to_have_count(10)
    expect(page.get_by_test_id("page-prev")).to_be_disabled()
    seen = commands.row_ids()

    page.get_by_test_id("page-next").click()
    expect(commands.page_info).to_have_text("Page 2 of 3")
    expect(commands.range).to_have_text("Showing 11–20 of 25")  # noqa: RUF001
    expect(commands.rows).to_have_count(10)
    seen += commands.row_ids()

    commands.page_number(3).click()  # straight to a page by its number
    expect(commands.page_info).to_have_text("Page 3 of 3")
    expect(commands.range).to_have_text("Showing 21–25 of 25")  # noqa: RUF001
    expect(commands.page_number(3)).to_have_attribute("aria-current", "page")
    expect(commands.rows).to_have_count(5)
    expect(page.get_by_test_id("page-next")).to_be_disabled()
    seen += commands.row_ids()
    assert len(seen) == 25
    assert set(seen) == sent

    page.get_by_test_id("page-prev").click()
    expect(commands.page_info).to_have_text("Page 2 of 3")
    expect(page).to_have_url(re.compile(rf"command_type={command_type}.*page=2.*page_size=10"))
    page_two = commands.row_ids()

    page.reload()
    expect(page.get_by_test_id("filter-command-type")).to_have_value(command_type)
    expect(page.get_by_test_id("filter-page-size")).to_have_value("10")
    expect(commands.page_info).to_have_text("Page 2 of 3")
    expect(commands.total).to_have_text("25 commands")
    expect(commands.rows).to_have_count(10)
    assert commands.row_ids() == page_two


def test_whole_row_opens_detail_with_audit_trail(
    page: Page, api: requests.Session, command_type: str
) -> None:
    command_id = send_via_api(api, "success", command_type)
    wait_until(page, command_id, "COMPLETED")
    commands = CommandsPage(page).open(f"status=COMPLETED&command_type={command_type}")
    row = commands.row(command_id)
    link = row.get_by_test_id("command-link")
    expect(link).to_have_text(short_id(command_id))
    expect(link).to_have_attribute("title", command_id)
    expect(link).to_have_attribute("href", f"/commands/{command_id}")
    created = row.locator("time").first
    expect(created).to_have_attribute("title", re.compile(r"\d{2}:\d{2}:\d{2}\.\d{3}"))
    expect(created).to_have_css("white-space", "nowrap")

    row.get_by_test_id("command-row-status").click()  # anywhere on the row, not only the link
    expect(page).to_have_url(re.compile(rf"/commands/{command_id}$"))
    detail = CommandDetailPage(page)
    expect_status(detail.status, "COMPLETED")
    expect(page.get_by_test_id("command-type-name")).to_have_text(command_type)
    expect(detail.audit_event_types).to_have_text(["SENT", "RECEIVED", "COMPLETED"])


def test_copy_button_copies_the_whole_id(
    page: Page, api: requests.Session, command_type: str
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    command_id = send_via_api(api, "success", command_type)
    commands = CommandsPage(page).open(f"command_type={command_type}")
    copy = commands.row(command_id).get_by_test_id("copy-id")
    copy.click()
    expect(copy).to_have_attribute("data-copied", "true")
    assert page.evaluate("navigator.clipboard.readText()") == command_id
    expect(page).to_have_url(re.compile(r"/commands\?"))  # copying does not open the row


def test_empty_filter_result_shows_the_empty_state(page: Page, command_type: str) -> None:
    commands = CommandsPage(page).open(f"command_type={command_type}")
    expect(commands.total).to_have_text("0 commands")
    expect(page.get_by_test_id("commands-empty")).to_be_visible()
    expect(page.get_by_test_id("skeleton-row")).to_have_count(0)
    expect(page.get_by_test_id("commands-foot")).to_be_hidden()


def test_phone_layout_shows_rows_as_cards(
    page: Page, api: requests.Session, command_type: str
) -> None:
    page.set_viewport_size(PHONE)
    command_id = send_via_api(api, "success", command_type)
    commands = CommandsPage(page).open(f"command_type={command_type}")
    row = commands.row(command_id)
    expect(row).to_have_css("display", "grid")
    expect(
        page.get_by_test_id("commands-filter-form").get_by_test_id("filter-status")
    ).to_be_hidden()
    page.get_by_test_id("filters-toggle").click()
    expect(page.get_by_test_id("filter-status")).to_be_visible()
    expect_no_horizontal_overflow(page)
