"""Screenshots of every view of the demo UI at desktop and phone size, for docs/screenshots/.

Run against a running stack (it resets the database and fills it with a few hundred commands):

    python -m orchestrator up --provider local        # prints STACK_BACKEND_URL
    python docs/screenshots/capture.py http://127.0.0.1:PORT

Each view is taken at 1440x900 and 390x844 (viewport only, so every PNG stays small), plus two
states: the empty Troubleshooting queue (before the data is sent) and the commands list while
it loads (its API call held back). The script reports any view wider than its viewport.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any

import requests
from playwright.sync_api import Browser, Page, Route, sync_playwright

from orchestrator.browser import find_chromium

OUT = Path(__file__).resolve().parent
SIZES = {"desktop": (1440, 900), "phone": (390, 844)}
SEED_MIX = [
    ({"type": "success"}, 230),
    (
        {"type": "fail_permanent", "error_code": "CARD_DECLINED", "error_message": "Card declined"},
        12,
    ),
    ({"type": "fail_transient"}, 6),
    ({"type": "fail_transient_then_succeed", "transient_failures": 1}, 30),
    ({"type": "timeout"}, 20),
]


def wait_for(predicate: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise TimeoutError(f"gave up waiting for {what}")


def seed(api: requests.Session, base: str) -> dict[str, str]:
    """Reset, send a mix of commands, and return ids of commands worth a detail screenshot."""
    api.post(f"{base}/api/testing/reset", params={"seed": "true"}).raise_for_status()
    mix = [{"behavior": behavior, "count": count} for behavior, count in SEED_MIX]
    task = api.post(f"{base}/api/commands/bulk", json={"command_type": "TestCommand", "mix": mix})
    task.raise_for_status()
    total = sum(count for _, count in SEED_MIX)
    wait_for(
        lambda: api.get(f"{base}/api/commands", params={"page_size": 1}).json()["total"] >= total,
        "the bulk send",
    )

    def send(behavior: dict[str, Any]) -> str:
        body = {"command_type": "TestCommand", "payload": {"order_id": 4711}, "behavior": behavior}
        response = api.post(f"{base}/api/commands", json=body)
        response.raise_for_status()
        return str(response.json()["command_id"])

    retried = send({"type": "fail_transient_then_succeed", "transient_failures": 2})
    wait_for(
        lambda: api.get(f"{base}/api/commands/{retried}").json()["status"] == "COMPLETED",
        "the retried command",
    )
    wait_for(
        lambda: api.get(f"{base}/api/stats").json()["in_tsq"] >= 12, "failures reaching the queue"
    )
    # The newest commands (first page of the list) in a few different states.
    send({"type": "fail_permanent", "error_code": "OUT_OF_STOCK", "error_message": "No stock"})
    send({"type": "fail_transient"})
    send({"type": "fail_transient_then_succeed", "transient_failures": 1})
    return {"detail": retried}


def no_overflow(page: Page) -> bool:
    root = "document.documentElement"
    return bool(page.evaluate(f"{root}.scrollWidth <= {root}.clientWidth"))


def shoot(page: Page, name: str, size: str, written: list[Path], whole: bool = False) -> None:
    width = page.viewport_size["width"] if page.viewport_size else 0
    if not no_overflow(page):
        print(f"OVERFLOW: {name} at {width}px", file=sys.stderr)
    target = OUT / f"{name}-{size}.png"
    page.screenshot(path=str(target), full_page=whole)
    written.append(target)


def capture_states(base: str, browser: Browser, written: list[Path]) -> None:
    """Empty and loading states, on an empty database."""
    requests.post(f"{base}/api/testing/reset", params={"seed": "false"}).raise_for_status()
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)

    for size, (width, height) in SIZES.items():
        context = browser.new_context(base_url=base, viewport={"width": width, "height": height})
        page = context.new_page()
        page.goto("/tsq")
        page.get_by_test_id("tsq-empty").wait_for()
        shoot(page, "empty-troubleshooting-queue", size, written)
        # The list's call is held back until the shot is taken: the page shows its loading state.
        page.route(re.compile(r"/api/commands\?"), hold)
        page.goto("/commands")
        page.get_by_test_id("skeleton-row").first.wait_for()
        shoot(page, "loading-commands", size, written)
        while held:
            held.pop().abort()
        context.close()


def capture(base: str) -> list[Path]:
    api = requests.Session()
    written: list[Path] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**find_chromium().launch_args())  # type: ignore[arg-type]
        capture_states(base, browser, written)
        capture_views(base, api, browser, written)
        browser.close()
    return written


def capture_views(base: str, api: requests.Session, browser: Browser, written: list[Path]) -> None:
    ids = seed(api, base)
    views = {  # send last: its bulk send adds commands to the lists
        "dashboard": "/",
        "commands": "/commands?page_size=10",
        "command-detail": f"/commands/{ids['detail']}",
        "troubleshooting-queue": "/tsq",
        "audit": f"/audit?command_id={ids['detail']}",
        "settings": "/settings",
        "send": "/send",
    }
    for size, (width, height) in SIZES.items():
        context = browser.new_context(
            base_url=base, viewport={"width": width, "height": height}, device_scale_factor=1
        )
        page = context.new_page()
        for name, path in views.items():
            if name == "commands":  # one command still at work (below the visibility timeout)
                busy = {"type": "success", "execution_time_ms": 4000}
                api.post(
                    f"{base}/api/commands",
                    json={"command_type": "TestCommand", "payload": {}, "behavior": busy},
                ).raise_for_status()
            page.goto(path)
            page.wait_for_load_state("networkidle")
            if name == "dashboard":
                for behavior in ("success", "fail-permanent", "timeout"):
                    page.get_by_test_id(f"quick-action-{behavior}").click()
                page.wait_for_timeout(2500)  # one refresh: the results settle live
            if name == "send":
                page.get_by_test_id("bulk-count").fill("3")
                page.get_by_test_id("bulk-submit").click()
                page.get_by_test_id("bulk-result").wait_for()
            if name == "troubleshooting-queue":
                page.get_by_test_id("tsq-select").nth(0).check()
                page.get_by_test_id("tsq-select").nth(1).check()
            page.evaluate("window.scrollTo(0, 0)")  # from the top, header included
            # The phone's list is a column of cards: show it whole, down to the pagination.
            shoot(page, name, size, written, whole=(name == "commands" and size == "phone"))
        context.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python docs/screenshots/capture.py STACK_BACKEND_URL")
    for path in capture(sys.argv[1].rstrip("/")):
        print(f"{path.relative_to(OUT.parents[1])}  {path.stat().st_size // 1024} KiB")
