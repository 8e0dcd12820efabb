"""Page objects for the demo UI; selectors are the UI's stable data-testids."""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect


class DashboardPage:
    def __init__(self, page: Page) -> None:
        self.page = page

    def open(self) -> DashboardPage:
        self.page.goto("/")
        return self

    def stat(self, name: str) -> Locator:
        return self.page.get_by_test_id(f"stat-{name}")


class SendCommandPage:
    def __init__(self, page: Page) -> None:
        self.page = page

    def open(self) -> SendCommandPage:
        self.page.goto("/send")
        expect(self.page.get_by_test_id("command-type")).not_to_have_value("")
        return self

    def send(self, behavior: str, **fields: str) -> str:
        """Send one command; returns its id from the result link."""
        self.page.get_by_test_id("behavior-type").select_option(behavior)
        for testid, value in fields.items():
            self.page.get_by_test_id(testid.replace("_", "-")).fill(value)
        self.page.get_by_test_id("send-submit").click()
        link = self.page.get_by_test_id("send-result-link")
        expect(link).to_be_visible()
        href = link.get_attribute("href") or ""
        return href.rstrip("/").rsplit("/", 1)[-1]


class CommandDetailPage:
    def __init__(self, page: Page) -> None:
        self.page = page

    def open(self, command_id: str) -> CommandDetailPage:
        self.page.goto(f"/commands/{command_id}")
        return self

    @property
    def status(self) -> Locator:
        return self.page.get_by_test_id("command-status")


class TroubleshootingPage:
    def __init__(self, page: Page) -> None:
        self.page = page

    def open(self) -> TroubleshootingPage:
        self.page.goto("/tsq")
        return self

    def row(self, command_id: str) -> Locator:
        return self.page.locator(f'[data-testid="tsq-row"][data-command-id="{command_id}"]')
