"""Audit trail search, and the settings form against the stored config."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, expect

from e2e.pages import AuditPage, SettingsPage, send_via_api, wait_until

# -- audit ------------------------------------------------------------------------------


def test_audit_search_shows_chronological_events_with_details(
    page: Page, api: requests.Session
) -> None:
    command_id = send_via_api(api, "success")
    wait_until(page, command_id, "COMPLETED")

    audit = AuditPage(page).open().search(command_id)
    expect(page).to_have_url(re.compile(rf"/audit\?command_id={command_id}$"))
    expect(page.get_by_test_id("audit-command-link")).to_have_text(command_id)
    expect(page.get_by_test_id("audit-event-type")).to_have_text(["SENT", "RECEIVED", "COMPLETED"])
    stamps = [
        datetime.fromisoformat(time.get_attribute("datetime") or "")
        for time in page.get_by_test_id("audit-event-time").all()
    ]
    assert stamps == sorted(stamps)

    received = audit.events.and_(page.locator('[data-event-type="RECEIVED"]'))
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


@pytest.fixture
def stored_config(api: requests.Session) -> Iterator[dict[str, Any]]:
    """The stored config; put back afterwards (commands sent later take max_attempts from it)."""
    response = api.get("/api/config")
    response.raise_for_status()
    original = response.json()
    yield original
    api.put("/api/config", json=original).raise_for_status()


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
