"""Find a Chromium for Playwright: its own download if installed, else the system's."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import PrerequisiteMissing

# Flags a system Chromium needs here (root, no GPU, closed network).
SYSTEM_CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
SYSTEM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@dataclass(frozen=True)
class BrowserChoice:
    source: str  # "playwright" or "system"
    executable_path: str | None
    args: tuple[str, ...] = field(default_factory=tuple)

    def launch_args(self) -> dict[str, object]:
        """Extra keyword arguments for `browser_type.launch`."""
        if self.executable_path is None:
            return {}
        return {"executable_path": self.executable_path, "args": list(self.args)}


def playwright_chromium() -> Path | None:
    """Playwright's own Chromium, if `playwright install chromium` has put it in place."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    try:
        with sync_playwright() as playwright:
            path = Path(playwright.chromium.executable_path)
    except Exception:
        return None
    return path if path.exists() else None


def system_chromium() -> Path | None:
    for name in SYSTEM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def find_chromium() -> BrowserChoice:
    if playwright_chromium() is not None:
        return BrowserChoice("playwright", None)
    system = system_chromium()
    if system is not None:
        return BrowserChoice("system", str(system), SYSTEM_CHROMIUM_ARGS)
    raise PrerequisiteMissing(
        "no Chromium found (neither Playwright's nor one on PATH: "
        + ", ".join(SYSTEM_CANDIDATES)
        + ")",
        "run `python -m playwright install chromium` (needs internet) "
        "or `apt-get install chromium`",
    )


def ensure_chromium() -> BrowserChoice:
    """Find a Chromium; if none, try `playwright install chromium` once, then look again."""
    try:
        return find_chromium()
    except PrerequisiteMissing:
        subprocess.run(
            [sys.executable, "-m", "playwright", "install", "chromium"],
            check=False,
            timeout=600,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return find_chromium()
