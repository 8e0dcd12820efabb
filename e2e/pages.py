"""Page objects for the demo UI; selectors are the UI's stable data-testids.

Also small helpers the tests share: `send_via_api` arranges commands without the UI,
`at_least` turns "a count of at least n" into a pattern `expect(...).to_have_text` waits on,
`expect_status` checks a status badge by the API's value (its text is the readable label),
`short_id` is how the UI shows an id, and `expect_no_horizontal_overflow` checks a layout.
"""

from __future__ import annotations

import re
from typing import Any

import requests
from playwright.sync_api import Locator, Page, ViewportSize, expect

from backend.web.routes import STATUS_LABELS

# Worker settings of the e2e stack (orchestrator/spec.py worker_args): visibility timeout 5 s,
# backoff 1 s, poll 1 s; the detail page polls from 0.25 s up to every 2 s. Budgets to settle:
SETTLE_MS = 15_000
SETTLE_SLOW_MS = 25_000
PHONE: ViewportSize = {"width": 390, "height": 844}
SHORT_ID_LENGTH = 8  # static/app.js SHORT_ID_LENGTH
LABELS: dict[str, str] = {str(status): label for status, label in STATUS_LABELS.items()}


def short_id(command_id: str) -> str:
    """The id as the UI shows it (the whole id is in the link's href and title)."""
    return command_id[:SHORT_ID_LENGTH]


def expect_status(badge: Locator, status: str, timeout: float | None = None) -> None:
    """The badge shows `status` (the API's value) with its readable label."""
    expect(badge).to_have_attribute("data-status", status, timeout=timeout)
    expect(badge).to_have_text(LABELS[status])


def expect_no_horizontal_overflow(page: Page) -> None:
    """Nothing sticks out sideways: the page is no wider than its viewport."""
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"{page.url}: {widths[0]} px wide in a {widths[1]} px viewport"


def send_via_api(
    api: requests.Session,
    behavior: str,
    command_type: str = "TestCommand",
    payload: dict[str, Any] | None = None,
    **behavior_fields: Any,
) -> str:
    """POST /api/commands; returns the new command's id."""
    response = api.post(
        "/api/commands",
        json={
            "command_type": command_type,
            "payload": payload or {},
            "behavior": {"type": behavior, **behavior_fields},
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["command_id"])


def at_least(minimum: int) -> re.Pattern[str]:
    """A pattern matching exactly the decimal integers >= `minimum` (no sign, no padding)."""
    digits = str(minimum)
    options = [digits, rf"[1-9]\d{{{len(digits)},}}"]  # itself, or any longer number
    for index, digit in enumerate(digits):
        if digit != "9":
            rest = len(digits) - index - 1
            options.append(rf"{digits[:index]}[{int(digit) + 1}-9]\d{{{rest}}}")
    return re.compile(rf"^(?:{'|'.join(options)})$")


def id_from_href(link: Locator) -> str:
    """The command id at the end of a /commands/<id> link."""
    href = link.get_attribute("href") or ""
    return href.rstrip("/").rsplit("/", 1)[-1]


def flash_messages(page: Page, level: str | None = None) -> Locator:
    """Flash messages, newest first; only those of `level` (info|success|error) when given."""
    messages = page.get_by_test_id("flash-message")
    return messages.and_(page.locator(f'[data-level="{level}"]')) if level else messages


class DashboardPage:
    def __init__(self, page: Page) -> None:
        self.page = page

    def open(self) -> DashboardPage:
        self.page.goto("/")
        return self

    def stat(self, name: str) -> Locator:
        return self.page.get_by_test_id(f"stat-{name}")

    def stat_value(self, name: str) -> int:
        """The card's count once the first refresh has filled it."""
        card = self.stat(name)
        expect(card).to_have_text(re.compile(r"^\d+$"))
        return int(card.inner_text())

    def quick_action(self, behavior: str) -> Locator:
        return self.page.get_by_test_id(f"quick-action-{behavior.replace('_', '-')}")

    def quick_results(self, behavior: str) -> Locator:
        return self.page.locator(f'[data-testid="quick-action-result"][data-behavior="{behavior}"]')


class SendCommandPage:
    def __init__(self, page: Page) -> None:
        self.page = page

    def open(self) -> SendCommandPage:
        self.page.goto("/send")
        # The select starts with a bare "TestCommand" option; the API's list labels it
        # "<domain> · <name>", so this waits until the command types are loaded.
        expect(
            self.page.get_by_test_id("command-type").locator('option[value="TestCommand"]')
        ).to_contain_text("·")
        return self

    def fill(self, behavior: str, **fields: str) -> SendCommandPage:
        """Choose the behavior and fill fields by test id (underscores allowed)."""
        self.page.get_by_test_id("behavior-type").select_option(behavior)
        for testid, value in fields.items():
            self.page.get_by_test_id(testid.replace("_", "-")).fill(value)
        return self

    def submit(self) -> None:
        self.page.get_by_test_id("send-submit").click()

    def send(self, behavior: str, **fields: str) -> str:
        """Send one command; returns its id from the result link."""
        self.fill(behavior, **fields).submit()
        link = self.page.get_by_test_id("send-result-link")
        expect(link).to_be_visible()
        return id_from_href(link)

    def field_error(self, testid: str) -> Locator:
        return self.page.get_by_test_id(f"field-error-{testid}")

    @property
    def result_note(self) -> Locator:
        """The API's note under the result (e.g. the command will reach the TSQ first)."""
        return self.page.get_by_test_id("send-result-note")

    @property
    def bulk_notes(self) -> Locator:
        """One item per share of the bulk that the API noted (data-field, data-expected)."""
        return self.page.get_by_test_id("bulk-note")

    def send_bulk(self, behavior: str, count: int) -> None:
        self.page.get_by_test_id("behavior-type").select_option(behavior)
        self.page.get_by_test_id("bulk-count").fill(str(count))
        self.page.get_by_test_id("bulk-submit").click()
        expect(self.page.get_by_test_id("bulk-panel")).to_be_visible()


class CommandDetailPage:
    def __init__(self, page: Page) -> None:
        self.page = page

    def open(self, command_id: str) -> CommandDetailPage:
        self.page.goto(f"/commands/{command_id}")
        return self

    @property
    def status(self) -> Locator:
        return self.page.get_by_test_id("command-status")

    @property
    def attempts(self) -> Locator:
        return self.page.get_by_test_id("command-attempts")

    @property
    def audit_event_types(self) -> Locator:
        return self.page.get_by_test_id("audit-event-type")

    def wait_for_status(self, status: str, timeout: float = SETTLE_MS) -> CommandDetailPage:
        """Wait while the page polls (it polls only while PENDING or IN_PROGRESS)."""
        expect_status(self.status, status, timeout=timeout)
        return self


def wait_until(page: Page, command_id: str, status: str, timeout: float = SETTLE_MS) -> None:
    """Watch the command's detail page until it shows `status`."""
    CommandDetailPage(page).open(command_id).wait_for_status(status, timeout)


class CommandsPage:
    def __init__(self, page: Page) -> None:
        self.page = page

    def open(self, query: str = "") -> CommandsPage:
        self.page.goto(f"/commands{'?' + query if query else ''}")
        return self

    def filter(
        self, status: str | None = None, command_type: str | None = None, page_size: int = 25
    ) -> CommandsPage:
        """Fill the filter form and apply it (page 1)."""
        self.page.get_by_test_id("filter-status").select_option(status or "")
        self.page.get_by_test_id("filter-command-type").fill(command_type or "")
        self.page.get_by_test_id("filter-page-size").select_option(str(page_size))
        self.page.get_by_test_id("filter-apply").click()
        return self

    @property
    def rows(self) -> Locator:
        return self.page.get_by_test_id("command-row")

    def row(self, command_id: str) -> Locator:
        return self.page.locator(f'[data-testid="command-row"][data-command-id="{command_id}"]')

    def row_ids(self) -> list[str]:
        return [row.get_attribute("data-command-id") or "" for row in self.rows.all()]

    @property
    def total(self) -> Locator:
        return self.page.get_by_test_id("commands-total")

    @property
    def page_info(self) -> Locator:
        return self.page.get_by_test_id("page-info")

    @property
    def range(self) -> Locator:
        return self.page.get_by_test_id("commands-range")

    def page_number(self, number: int) -> Locator:
        return self.page.locator(f'[data-testid="page-number"][data-page="{number}"]')


class TroubleshootingPage:
    def __init__(self, page: Page) -> None:
        self.page = page

    def open(self) -> TroubleshootingPage:
        self.page.goto("/tsq")
        expect(self.page.get_by_test_id("tsq-total")).to_contain_text("in the queue")
        return self

    @property
    def nav_count(self) -> Locator:
        return self.page.get_by_test_id("nav-tsq-count")

    def row(self, command_id: str) -> Locator:
        return self.page.locator(f'[data-testid="tsq-row"][data-command-id="{command_id}"]')

    def act(self, command_id: str, action: str) -> None:
        """Click a row's Retry, Cancel or Complete."""
        self.row(command_id).get_by_test_id(f"tsq-{action}").click()

    def select(self, command_id: str) -> None:
        self.row(command_id).get_by_test_id("tsq-select").check()

    def bulk(self, action: str, confirm: bool = True) -> None:
        """Click a bulk button and answer its confirmation."""
        self.page.get_by_test_id(f"tsq-bulk-{action}").click()
        dialog = self.page.get_by_test_id("confirm-dialog")
        expect(dialog).to_be_visible()
        dialog.get_by_test_id("confirm-accept" if confirm else "confirm-dismiss").click()
        expect(dialog).to_be_hidden()

    def bulk_result(self, command_id: str) -> Locator:
        return self.page.locator(f'[data-testid="tsq-bulk-result"][data-command-id="{command_id}"]')


class AuditPage:
    def __init__(self, page: Page) -> None:
        self.page = page

    def open(self) -> AuditPage:
        self.page.goto("/audit")
        return self

    def search(self, command_id: str) -> AuditPage:
        self.page.get_by_test_id("audit-command-id").fill(command_id)
        self.page.get_by_test_id("audit-submit").click()
        return self

    @property
    def events(self) -> Locator:
        return self.page.get_by_test_id("audit-event")

    @property
    def error(self) -> Locator:
        return self.page.get_by_test_id("audit-error")


class SettingsPage:
    def __init__(self, page: Page) -> None:
        self.page = page

    def open(self) -> SettingsPage:
        self.page.goto("/settings")
        expect(self.field("max-attempts")).not_to_have_value("")
        return self

    def field(self, name: str) -> Locator:
        return self.page.get_by_test_id(f"setting-{name}")

    def field_error(self, name: str) -> Locator:
        return self.page.get_by_test_id(f"field-error-setting-{name}")

    def save(self) -> None:
        self.page.get_by_test_id("settings-submit").click()
