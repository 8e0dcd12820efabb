"""Find a Chromium for Playwright: its own download if installed, else the system's."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
INSTALL_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class BrowserChoice:
    source: str  # "playwright" or "system"
    executable_path: str | None
    args: tuple[str, ...] = field(default_factory=tuple)

    def launch_args(self) -> dict[str, Any]:
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
        "run `python -m playwright install --with-deps chromium` (needs internet) "
        "or `apt-get install chromium`",
    )


def install_command(python: str | None = None) -> list[str]:
    """`playwright install --with-deps chromium` for `python` (default: this interpreter).

    `--with-deps` also installs the system libraries Chromium needs (apt, as root or via sudo),
    which a fresh CI runner or container lacks.
    """
    return [python or sys.executable, "-m", "playwright", "install", "--with-deps", "chromium"]


def ensure_chromium(
    *, python: str | None = None, timeout_s: float = INSTALL_TIMEOUT_S
) -> BrowserChoice:
    """Find a Chromium; if none, run `install_command()` once (its output shown as it comes,
    on this process's stdout/stderr), then look again. A failed install raises
    PrerequisiteMissing naming the command and its exit status."""
    try:
        return find_chromium()
    except PrerequisiteMissing:
        pass
    command = install_command(python)
    print(f"browser: no Chromium found; running {shlex.join(command)}", file=sys.stderr, flush=True)
    try:
        completed = subprocess.run(command, check=False, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise PrerequisiteMissing(
            f"`{shlex.join(command)}` did not finish within {timeout_s:.0f}s",
            "check the network to Playwright's CDN, or `apt-get install chromium`",
        ) from None
    except OSError as exc:
        raise PrerequisiteMissing(
            f"`{shlex.join(command)}` could not start ({exc})",
            "install ci-stack's browser extra (`pip install 'ci-stack[browser]'`)",
        ) from None
    if completed.returncode != 0:
        raise PrerequisiteMissing(
            f"`{shlex.join(command)}` exited with {completed.returncode} (its output is above)",
            "fix what it printed (it needs internet, and root or sudo for --with-deps), "
            "or `apt-get install chromium`",
        )
    return find_chromium()
