"""Audit trail search, and the settings form against the stored config.

The settings tests change the stored config every test sees (commands sent meanwhile take
max_attempts from it), so they hold the stack alone (`exclusive_stack`, e2e/isolation.py)
and run in one xdist group.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, expect

from e2e.isolation import (  # the stack lock: shared (autouse) or exclusive
    GLOBAL_STATE_GROUP,
    exclusive_stack_fixture,  # noqa: F401
    shared_stack_fixture,  # noqa: F401
)
from e2e.pages import (
    AuditPage,
    SettingsPage,
    send_via_api,
    short_id,
    wait_until,
)

# -- audit ------------------------------------------------------------------------------


def test_audit_search_shows_chronological_events_with_details(
    page: Page, api: requests.Session
) -> None:
    command_id = send_via_api(api, "success")
    wait_until(page, command_id, "COMPLETED")

    audit = AuditPage(page).open().search(command_id)
    expect(page).to_have_url(re.compile(rf"/audit\?command_id={command_id}$"))
    expect(page.get_by_test_id("audit-command-link")).to_have_text(short_id(command_id))
    expect(page.get_by_test_id("audit-command-link")).to_have_attribute("title", command_id)
    expect(page.get_by_test_id("audit-event-type")).to_have_text(["SENT", "RECEIVED", "COMPLETED"])
    stamps = [
        datetime.fromisoformat(time.get_attribute("datetime") or "")
        for time in page.get_by_test_id("audit-event-time").all()
    ]
    assert stamps == sorted(stamps)
    # Inline: millisecond stamps, the gap to the previous event, the attempt.
    expect(page.get_by_test_id("audit-event-time")).to_have_text(
        [re.compile(r"^\d{2}:\d{2}:\d{2}\.\d{3}$")] * 3
    )
    expect(page.get_by_test_id("audit-event-gap")).to_have_text(
        ["first event", re.compile(r"^\+[\d.]+ (ms|s)$"), re.compile(r"^\+[\d.]+ (ms|s)$")]
    )

    received = audit.events.and_(page.locator('[data-event-type="RECEIVED"]'))
    expect(received.get_by_test_id("audit-event-attempt")).to_have_text("attempt 1 of 3")
    details = received.get_by_test_id("audit-event-details")
    body = details.locator("pre")
    expect(body).to_be_hidden()
    details.locator("summary").click()
    expect(details).to_have_attribute("open", "")
    expect(body).to_be_visible()
    expect(body).to_contain_text('"attempt": 1')


def test_audit_search_for_unknown_id_shows_not_found(page: Page) -> None:
    unknown = str(uuid.uuid4())
    audit = AuditPage(page).open().search(unknown)
    expect(audit.error).to_have_text(f"Command {unknown} was not found")
    expect(page.get_by_test_id("audit-results")).to_be_hidden()


# -- settings ---------------------------------------------------------------------------


def test_audit_trail_shows_error_codes_inline(page: Page, api: requests.Session) -> None:
    command_id = send_via_api(
        api, "fail_permanent", error_code="E2E_AUDIT", error_message="audit inline check"
    )
    wait_until(page, command_id, "IN_TROUBLESHOOTING_QUEUE")
    AuditPage(page).open().search(command_id)
    moved = page.locator('[data-testid="audit-event"][data-event-type="MOVED_TO_TSQ"]')
    expect(moved.get_by_test_id("audit-event-error-code")).to_have_text("E2E_AUDIT")
    expect(moved.get_by_test_id("audit-event-message")).to_contain_text("audit inline check")


def test_audit_without_an_id_prompts_for_one(page: Page) -> None:
    AuditPage(page).open()
    expect(page.get_by_test_id("audit-prompt")).to_be_visible()
    expect(page.get_by_test_id("audit-results")).to_be_hidden()


@pytest.fixture
def stored_config(api: requests.Session, exclusive_stack: None) -> Iterator[dict[str, Any]]:
    """The stored config; put back afterwards (commands sent later take max_attempts from it)."""
    response = api.get("/api/config")
    response.raise_for_status()
    original = response.json()
    yield original
    api.put("/api/config", json=original).raise_for_status()


@pytest.mark.xdist_group(GLOBAL_STATE_GROUP)
def test_settings_save_and_reload(page: Page, stored_config: dict[str, Any]) -> None:
    settings = SettingsPage(page).open()
    expect(settings.field("max-attempts")).to_have_value(
        str(stored_config["retry"]["max_attempts"])
    )
    expect(settings.field("visibility-timeout")).to_have_value(
        str(stored_config["worker"]["visibility_timeout"])
    )
    expect(settings.field("concurrency")).to_have_value(str(stored_config["worker"]["concurrency"]))

    max_attempts = stored_config["retry"]["max_attempts"] + 2
    visibility = stored_config["worker"]["visibility_timeout"] + 7
    settings.field("max-attempts").fill(str(max_attempts))
    settings.field("visibility-timeout").fill(str(visibility))
    settings.save()
    expect(page.get_by_test_id("settings-saved")).to_have_text("Settings saved.")

    page.reload()
    expect(settings.field("max-attempts")).to_have_value(str(max_attempts))
    expect(settings.field("visibility-timeout")).to_have_value(str(visibility))
    expect(settings.field("concurrency")).to_have_value(str(stored_config["worker"]["concurrency"]))


@pytest.mark.xdist_group(GLOBAL_STATE_GROUP)
def test_settings_refuse_zero_concurrency(page: Page, stored_config: dict[str, Any]) -> None:
    settings = SettingsPage(page).open()
    settings.field("concurrency").fill("0")
    settings.save()
    expect(settings.field_error("concurrency")).to_contain_text("greater than or equal to 1")
    expect(settings.field("concurrency")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_test_id("settings-error")).to_contain_text("worker.concurrency")
    expect(page.get_by_test_id("settings-saved")).to_have_text("")

    page.reload()
    expect(settings.field("concurrency")).to_have_value(str(stored_config["worker"]["concurrency"]))
