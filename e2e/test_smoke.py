"""First browser smoke test: the dashboard, a command that completes, one that lands in the TSQ."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from e2e.isolation import shared_stack_fixture  # noqa: F401  (the stack lock, autouse)
from e2e.pages import (
    CommandDetailPage,
    DashboardPage,
    SendCommandPage,
    TroubleshootingPage,
    expect_status,
)

UUID = re.compile(r"^[0-9a-f-]{36}$")


def test_dashboard_loads(page: Page, console_events: list[dict[str, object]]) -> None:
    dashboard = DashboardPage(page).open()
    expect(page).to_have_title(re.compile("Dashboard"))
    expect(dashboard.stat("completed")).to_have_text(re.compile(r"^\d+$"))
    calls = [e for e in console_events if e.get("kind") == "api_call"]
    assert any(c.get("path") == "/api/stats" and c.get("status") == 200 for c in calls)
    assert all(c.get("correlation_id") for c in calls)


def test_success_command_completes(page: Page) -> None:
    command_id = SendCommandPage(page).open().send("success")
    assert UUID.match(command_id)
    detail = CommandDetailPage(page).open(command_id)
    expect_status(detail.status, "COMPLETED", timeout=15_000)


def test_permanent_failure_lands_in_tsq(page: Page) -> None:
    command_id = (
        SendCommandPage(page)
        .open()
        .send("fail_permanent", error_code="SMOKE_FAIL", error_message="smoke test failure")
    )
    detail = CommandDetailPage(page).open(command_id)
    expect_status(detail.status, "IN_TROUBLESHOOTING_QUEUE", timeout=15_000)
    tsq = TroubleshootingPage(page).open()
    row = tsq.row(command_id)
    expect(row).to_be_visible()
    expect(row.get_by_test_id("tsq-error-code")).to_have_text("SMOKE_FAIL")
