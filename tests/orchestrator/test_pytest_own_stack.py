"""A stack the pytest plugin starts itself: one Run in the stash, for both plugins.

A real inner session (pytester) on the local provider with a tiny profile named as a
module in the project's pyproject.toml: the `stack` fixture starts it, the evidence plugin
writes into the Run's folder (read from `config.stash[RUN_KEY]`, not from the environment),
`reset_db` uses the very profile that started it, and the stack plugin finishes the Run with
pytest's exit status. No STACK_* variable is set inside the process at any point.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from orchestrator import util  # not its test_* names: pytest would collect them
from orchestrator.artifacts import FAILED_TEST_FILE, RESULTS_FILE
from orchestrator.artifacts.layout import RUN_FILE
from orchestrator.contract import EXPORTED_ENV, OWNER_ENV, RUN_ENV
from tests.orchestrator.test_pytest_plugin import run_inner

pytest_plugins = ["pytester"]

PROFILE = """
from orchestrator.profile import AppProfile
from orchestrator.spec import HttpProbe, ServiceSpec


class TinyProfile(AppProfile):
    name = "tiny"
    web_service = "web"

    def services(self, config):
        command = ("{python}", "-m", "http.server", "{port}", "--bind", "{host}")
        probe = HttpProbe("/", "GET / answers 200")
        return (ServiceSpec(name="web", role="web", command=command, port=8000, probe=probe),)

    def reset(self, base_url, seed, headers):
        return {"reset": base_url, "seed": seed, "test_id": headers.get("X-Test-Id")}


profile = TinyProfile()
"""

TESTS = """
import os

from orchestrator.pytest_evidence import evidence_artifacts
from orchestrator.pytest_plugin import RUN_KEY


def stack_variables():
    return sorted(k for k in os.environ if k.startswith(("STACK_", "CI_STACK_")))


def test_before_the_stack():
    assert stack_variables() == []


def test_one_run_for_both_plugins(request, stack, reset_db, test_id):
    run = request.config.stash[RUN_KEY]
    assert evidence_artifacts(request.config) is run.artifacts
    assert stack.artifacts_dir == run.artifacts.root
    assert stack.environment["STACK_BACKEND_URL"] == stack.backend_url
    assert stack_variables() == []
    assert reset_db(seed=True) == {"reset": stack.backend_url, "seed": True, "test_id": test_id}


def test_red_on_purpose(api):
    assert api.get("/").status_code == 500, "red on purpose"
"""


@pytest.mark.slow
def test_a_self_started_stack_is_one_run_in_the_stash_for_both_plugins(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in (
        *EXPORTED_ENV,
        RUN_ENV,
        OWNER_ENV,
        "STACK_ARTIFACTS",
        "STACK_WORKERS",
        "STACK_RETRIES",
        "STACK_HISTORY",  # the inner run records into its own project's .ci-stack/history
    ):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "run"
    pytester.makefile(
        ".toml",
        pyproject=f'[tool.ci-stack]\napp = "tiny_profile:profile"\nprovider = "local"\n'
        f'artifacts = "{folder}"\n',
    )
    (pytester.path / "tiny_profile.py").write_text(PROFILE)
    pytester.makepyfile(test_own=TESTS)

    result = run_inner(pytester)

    result.assert_outcomes(passed=2, failed=1)
    assert not [k for k in os.environ if k.startswith("STACK_")]
    results = [json.loads(line) for line in (folder / RESULTS_FILE).read_text().splitlines()]
    # test_before_the_stack ran before the stack existed: there was no folder to record it in
    assert [(r["nodeid"], r["outcome"]) for r in results] == [
        ("test_own.py::test_one_run_for_both_plugins", "passed"),
        ("test_own.py::test_red_on_purpose", "failed"),
    ]
    red = util.test_slug("test_own.py::test_red_on_purpose")
    assert (folder / "tests" / red / FAILED_TEST_FILE).is_file()
    assert (folder / "junit.xml").is_file()
    run = json.loads((folder / RUN_FILE).read_text())
    assert (run["verdict"], run["command_status"], run["app"]) == ("failed", 1, "tiny")
    assert run["command"][0] == "pytest"
