"""orchestrator.browser: the install fallback's command and its failure (no install is run)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from orchestrator import browser
from orchestrator.errors import PrerequisiteMissing


def test_install_command_adds_the_system_dependencies() -> None:
    assert browser.install_command() == [
        sys.executable,
        "-m",
        "playwright",
        "install",
        "--with-deps",
        "chromium",
    ]
    assert browser.install_command("/opt/py/bin/python")[0] == "/opt/py/bin/python"


@pytest.fixture
def no_chromium(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Neither Playwright's Chromium (empty browsers path) nor a system one (empty PATH)."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path / "no-browsers"))
    with pytest.raises(PrerequisiteMissing):
        browser.find_chromium()


def test_a_failed_install_shows_its_output_and_says_so(
    no_chromium: None, capfd: pytest.CaptureFixture[str]
) -> None:
    # A real interpreter without Playwright: the install fails the way a broken one would.
    python = "/usr/bin/python3"
    if not Path(python).exists():
        pytest.skip("needs a system python3 without playwright")
    with pytest.raises(PrerequisiteMissing) as raised:
        browser.ensure_chromium(python=python, timeout_s=60)

    out, err = capfd.readouterr()
    command = f"{python} -m playwright install --with-deps chromium"
    assert f"browser: no Chromium found; running {command}" in err
    assert "No module named playwright" in out + err  # the installer's own output, not hidden
    assert raised.value.what == f"`{command}` exited with 1 (its output is above)"
    assert "apt-get install chromium" in raised.value.fix


def test_an_installer_that_cannot_start_is_one_message(no_chromium: None, tmp_path: Path) -> None:
    with pytest.raises(PrerequisiteMissing, match="could not start"):
        browser.ensure_chromium(python=str(tmp_path / "no-such-python"))


def test_an_installer_that_hangs_is_stopped(no_chromium: None, tmp_path: Path) -> None:
    sleeper = tmp_path / "slow-python"
    sleeper.write_text("#!/bin/sh\nexec /bin/sleep 30\n")
    sleeper.chmod(0o755)
    with pytest.raises(PrerequisiteMissing, match=r"did not finish within 1s"):
        browser.ensure_chromium(python=str(sleeper), timeout_s=1)
