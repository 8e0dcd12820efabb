"""A deliberately failing test, to show what a red run leaves behind.

Not collected unless E2E_DEMO_FAILURE=1 (see e2e/conftest.py):
    E2E_DEMO_FAILURE=1 nox -s e2e -- e2e/test_demo_failure.py
"""

from __future__ import annotations

from playwright.sync_api import Page

from e2e.isolation import shared_stack_fixture  # noqa: F401  (the stack lock, autouse)
from e2e.pages import CommandDetailPage, SendCommandPage, expect_status


def test_demo_failure_expects_the_wrong_status(page: Page) -> None:
    command_id = SendCommandPage(page).open().send("fail_permanent", error_code="DEMO_FAILURE")
    detail = CommandDetailPage(page).open(command_id)
    # Wrong on purpose: a fail_permanent command ends in the TSQ, not COMPLETED.
    expect_status(detail.status, "COMPLETED", timeout=5_000)
