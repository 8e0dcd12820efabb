"""On GitHub Actions every secret a run makes is masked (`::add-mask::`) before anything
could print it, so the job log shows `***` where a test prints the database password."""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from orchestrator.contract import RUN_ENV
from orchestrator.github import mask_secrets
from orchestrator.redaction import Redactor
from tests.fixtures.backend import DEMO_APP, REPO_ROOT
from tests.fixtures.orchestrator_cli import ORCHESTRATOR, local_run_args
from tests.fixtures.stack_checks import live_pids_of_run

pytest_plugins = ["pytester"]

ON_GITHUB = {"GITHUB_ACTIONS": "true"}


def test_masks_are_printed_on_github_only() -> None:
    redactor = Redactor(["pw-Secret/42+x"])
    out = io.StringIO()

    assert mask_secrets(redactor.needles, env={}, stream=out) == 0
    assert out.getvalue() == ""

    assert mask_secrets(redactor.needles, env=ON_GITHUB, stream=out) == 2
    assert out.getvalue().splitlines() == [
        "::add-mask::pw-Secret%252F42%252Bx",  # URL-encoded; its % escaped as workflow data
        "::add-mask::pw-Secret/42+x",
    ]


def test_a_mask_value_is_escaped_as_workflow_data() -> None:
    out = io.StringIO()

    mask_secrets(["line1\nline2%", ""], env=ON_GITHUB, stream=out)

    assert out.getvalue() == "::add-mask::line1%0Aline2%25\n"  # one command, nothing empty


@pytest.mark.slow
def test_run_masks_the_password_before_any_line_that_shows_it(tmp_path: Path) -> None:
    command = 'echo "the test saw $STACK_DATABASE_URL"'
    env = {**os.environ, **ON_GITHUB, "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}
    result = subprocess.run(
        [*ORCHESTRATOR, *local_run_args(tmp_path / "artifacts", "sh", "-c", command)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one stream, in the order a job log shows them
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout
    lines = result.stdout.splitlines()
    [shown] = [line for line in lines if line.startswith("the test saw ")]
    dsn = urlsplit(shown.removeprefix("the test saw "))
    assert dsn.password, shown
    password = unquote(dsn.password)
    first = next(i for i, line in enumerate(lines) if password in line or dsn.password in line)
    assert lines[first] == f"::add-mask::{password}", lines[: first + 1]
    facts = json.loads((tmp_path / "artifacts" / "stack.json").read_text())
    assert live_pids_of_run(facts["run_id"]) == []


SELF_STARTED = """
def test_prints_the_database_url(stack):
    print("the test saw", stack.database_url)
    assert False, "red, so pytest shows what it captured"
"""


@pytest.mark.slow
def test_a_self_started_stack_masks_outside_pytests_capture(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Plain `pytest` on GitHub: the plugin starts the stack inside a test's setup, where
    pytest captures stdout; the masks must reach the job log itself, first."""
    for name in ("STACK_BACKEND_URL", "STACK_DATABASE_URL", "STACK_ARTIFACTS_DIR", RUN_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    monkeypatch.setenv("STACK_PROVIDER", "local")
    monkeypatch.setenv("STACK_APP", DEMO_APP)  # pytester's folder has no pyproject naming it
    monkeypatch.setenv("STACK_WORKERS", "1")
    monkeypatch.setenv("STACK_ARTIFACTS", str(tmp_path / "artifacts"))
    pytester.makepyfile(test_self=SELF_STARTED)

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:playwright")

    result.assert_outcomes(failed=1)
    lines = result.outlines + result.errlines
    [shown] = [line for line in lines if line.startswith("the test saw ")]
    password = unquote(urlsplit(shown.removeprefix("the test saw ")).password or "")
    assert password, shown
    first = next(i for i, line in enumerate(result.outlines) if password in line)
    assert result.outlines[first] == f"::add-mask::{password}", result.outlines[: first + 1]
