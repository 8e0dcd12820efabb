"""Layout: every view fits a phone (390 px) and a desktop without sideways scrolling, shows
its loaded state, and the six statuses have six colours and six labels."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from playwright.sync_api import Page, ViewportSize, expect

from e2e.isolation import shared_stack_fixture  # noqa: F401  (the stack lock, autouse)
from e2e.pages import (
    LABELS,
    PHONE,
    SendCommandPage,
    SettingsPage,
    TroubleshootingPage,
    expect_no_horizontal_overflow,
    send_via_api,
)

DESKTOP: ViewportSize = {"width": 1440, "height": 900}


def _dashboard(page: Page, _: str) -> None:
    page.goto("/")
    expect(page.get_by_test_id("stat-completed")).to_have_attribute("data-state", "loaded")
    expect(page.get_by_test_id("activity-item").first).to_be_visible()


def _send(page: Page, _: str) -> None:
    SendCommandPage(page).open()


def _commands(page: Page, _: str) -> None:
    page.goto("/commands")
    expect(page.get_by_test_id("command-row").first).to_be_visible()
    expect(page.get_by_test_id("commands-range")).to_contain_text("Showing 1–")  # noqa: RUF001


def _detail(page: Page, command_id: str) -> None:
    page.goto(f"/commands/{command_id}")
    expect(page.get_by_test_id("audit-event").first).to_be_visible()


def _tsq(page: Page, _: str) -> None:
    TroubleshootingPage(page).open()


def _audit(page: Page, command_id: str) -> None:
    page.goto(f"/audit?command_id={command_id}")
    expect(page.get_by_test_id("audit-event").first).to_be_visible()


def _settings(page: Page, _: str) -> None:
    SettingsPage(page).open()


VIEWS: dict[str, Callable[[Page, str], None]] = {
    "dashboard": _dashboard,
    "send": _send,
    "commands": _commands,
    "command-detail": _detail,
    "tsq": _tsq,
    "audit": _audit,
    "settings": _settings,
}


@pytest.fixture
def failed_command(api: requests.Session) -> str:
    """A command with a long error, so the layouts hold real content (and it is in the queue)."""
    return send_via_api(
        api,
        "fail_permanent",
        error_code="E2E_LAYOUT_WITH_A_RATHER_LONG_ERROR_CODE",
        error_message="A long error message that has to wrap on a phone " * 3,
    )


@pytest.mark.parametrize("size", [PHONE, DESKTOP], ids=["phone-390", "desktop-1440"])
@pytest.mark.parametrize("view", VIEWS)
def test_view_fits_without_horizontal_overflow(
    page: Page, failed_command: str, view: str, size: ViewportSize
) -> None:
    page.set_viewport_size(size)
    VIEWS[view](page, failed_command)
    expect(page.get_by_test_id("skeleton-row")).to_have_count(0)
    expect_no_horizontal_overflow(page)


def test_six_statuses_have_six_colours_and_labels(page: Page) -> None:
    page.goto("/")
    badges = page.locator(".card-label .status")
    expect(badges).to_have_count(6)
    colours = badges.evaluate_all("(all) => all.map((b) => getComputedStyle(b).color)")
    assert len(set(colours)) == 6, colours
    expect(badges).to_have_text(list(LABELS.values()))
    assert len(set(LABELS.values())) == 6
