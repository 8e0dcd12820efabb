"""Commands browser: filters, pagination, filters in the URL, and the way into a command.

Tests that count rows send their commands with a command type of their own, so the filters
match exactly what they created whatever else is in the database. Workers register a handler
for a new type at their next heartbeat (1 s): a command delivered before that fails once and
is retried, which costs an attempt but does not change how it ends.
"""

from __future__ import annotations

import re
import uuid

import pytest
import requests
from playwright.sync_api import Page, expect

from e2e.pages import CommandDetailPage, CommandsPage, send_via_api, wait_until


@pytest.fixture
def command_type(api: requests.Session) -> str:
    """A fresh command type in the workers' domain (they pick it up from their heartbeat)."""
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
        expect(row.get_by_test_id("command-row-status")).to_have_text("COMPLETED")

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
    expect(commands.page_info).to_have_text("Page 1 of 3")
    expect(commands.rows).to_have_count(10)
    expect(page.get_by_test_id("page-prev")).to_be_disabled()
    seen = commands.row_ids()

    page.get_by_test_id("page-next").click()
    expect(commands.page_info).to_have_text("Page 2 of 3")
    expect(commands.rows).to_have_count(10)
    seen += commands.row_ids()

    page.get_by_test_id("page-next").click()
    expect(commands.page_info).to_have_text("Page 3 of 3")
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


def test_row_link_opens_detail_with_audit_trail(page: Page, api: requests.Session) -> None:
    command_id = send_via_api(api, "success")
    wait_until(page, command_id, "COMPLETED")
    # Newest first: the command just sent heads the first page of completed TestCommands.
    commands = CommandsPage(page).open("status=COMPLETED&command_type=TestCommand")
    link = commands.row(command_id).get_by_test_id("command-link")
    expect(link).to_have_text(command_id)
    link.click()

    expect(page).to_have_url(re.compile(rf"/commands/{command_id}$"))
    detail = CommandDetailPage(page)
    expect(detail.status).to_have_text("COMPLETED")
    expect(page.get_by_test_id("command-type-name")).to_have_text("TestCommand")
    expect(detail.audit_event_types).to_have_text(["SENT", "RECEIVED", "COMPLETED"])
