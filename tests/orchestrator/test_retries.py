"""Retries, flaky tests and every attempt's evidence: inner pytest runs (pytester, in a
subprocess so xdist and the entry-point plugins load as in real use) with a test that fails
its first attempt and passes its second (a file counter, no sleeps)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from orchestrator.artifacts.finish import failed_test_folders
from orchestrator.artifacts.junit import read_junit
from orchestrator.artifacts.layout import Artifacts
from orchestrator.artifacts.results import load_run
from orchestrator.artifacts.summary import render_summary
from orchestrator.config import OrchestratorConfig
from orchestrator.contract import RUN_ENV
from orchestrator.github import ANNOTATED_OUTCOMES, github_annotations
from orchestrator.redaction import Redactor

pytest_plugins = ["pytester"]

SUITE = """
import os
from pathlib import Path

from orchestrator.pytest_evidence import write_test_file


def attempt(name):
    counter = Path(os.environ["COUNTERS"]) / name
    n = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(n))
    return n


def test_flaky(request, test_id):
    n = attempt("flaky")
    write_test_file(request.config, request.node.nodeid, "console.jsonl",
                    '{"attempt": %d, "test_id": "%s"}\\n' % (n, test_id))
    assert n >= 2, f"attempt {n} fails"


def test_broken(request):
    n = attempt("broken")
    write_test_file(request.config, request.node.nodeid, "note.txt", str(n))
    assert False, f"broken at attempt {n}"


def test_fine():
    pass
"""


@pytest.fixture
def run_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pytester: pytest.Pytester) -> Path:
    folder = tmp_path / "artifacts"
    monkeypatch.setenv("STACK_ARTIFACTS_DIR", str(folder))
    monkeypatch.setenv(RUN_ENV, "run-r")
    counters = tmp_path / "counters"
    counters.mkdir()
    monkeypatch.setenv("COUNTERS", str(counters))
    for name in ("STACK_RETRIES", "STACK_FAIL_ON_FLAKY", "CI"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_suite=SUITE)
    return folder


def _results(folder: Path) -> dict[str, dict]:
    lines = (folder / "results.jsonl").read_text().splitlines()
    return {json.loads(line)["nodeid"].split("::")[-1]: json.loads(line) for line in lines}


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_flaky_and_failed_attempts_keep_their_evidence(
    pytester: pytest.Pytester, run_folder: Path, xdist: list[str]
) -> None:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--retries", "1", *xdist)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # test_broken; the flaky one passes
    result.stdout.fnmatch_lines(["*1 failed, 1 passed, 1 flaky*"])
    results = _results(run_folder)
    flaky, broken = results["test_flaky"], results["test_broken"]
    assert flaky["outcome"] == "flaky" and flaky["attempt"] == 2
    assert [a["message"].splitlines()[0] for a in flaky["attempts"]] == [
        "AssertionError: attempt 1 fails"
    ]
    assert broken["outcome"] == "failed" and "broken at attempt 2" in broken["message"]
    assert "broken at attempt 1" in broken["attempts"][0]["message"]
    assert results["test_fine"]["outcome"] == "passed" and "attempts" not in results["test_fine"]
    # Each failed attempt in its own folder, its own test id; the last attempt where it was.
    flaky_dir = run_folder / flaky["attempts"][0]["folder"]
    assert flaky_dir.name == "attempt-1"
    console = json.loads((flaky_dir / "console.jsonl").read_text())
    assert console["attempt"] == 1 and console["test_id"] == flaky["attempts"][0]["test_id"]
    last = json.loads((flaky_dir.parent / "console.jsonl").read_text())
    assert last == {"attempt": 2, "test_id": flaky["test_id"]}
    assert flaky["test_id"] == flaky["attempts"][0]["test_id"] + "-attempt-2"
    broken_dir = run_folder / broken["attempts"][0]["folder"]
    assert (broken_dir / "note.txt").read_text() == "1"
    assert (broken_dir.parent / "note.txt").read_text() == "2"
    attempt_1 = json.loads((broken_dir / "test.json").read_text())
    assert attempt_1["attempt"] == 1
    # when the attempt started, failed and ended (its timeline's own entries), before the next
    assert attempt_1["started_at"] <= attempt_1["failed_at"] <= attempt_1["finished_at"]
    assert attempt_1["finished_at"] <= broken["started_at"]
    # Slices: every attempt's folder is cut under its own test id.
    folders = failed_test_folders(Artifacts(run_folder, Redactor([])))
    assert folders[flaky["attempts"][0]["test_id"]] == flaky_dir
    assert folders[broken["test_id"]] == broken_dir.parent
    assert folders[broken["attempts"][0]["test_id"]] == broken_dir


def test_junit_has_surefire_flaky_and_rerun_elements(
    pytester: pytest.Pytester, run_folder: Path
) -> None:
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--retries", "1")
    root = ET.parse(run_folder / "junit.xml").getroot()
    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert len(list(root.iter("testcase"))) == 3  # one testcase per test, not per attempt
    flaky = cases["test_flaky"]
    assert [child.tag for child in flaky] == ["flakyFailure"]
    assert flaky[0].get("type") == "AssertionError"
    assert "attempt 1 fails" in (flaky[0].findtext("stackTrace") or "")
    assert [child.tag for child in cases["test_broken"]] == ["failure", "rerunFailure"]
    totals = read_junit(run_folder / "junit.xml")
    assert totals is not None and (totals.failures, totals.passed) == (1, 2)
    outcomes = {case.name: case.outcome for case in totals.cases}
    assert outcomes == {"test_flaky": "flaky", "test_broken": "failed", "test_fine": "passed"}


def test_summary_and_report_say_flaky(pytester: pytest.Pytester, run_folder: Path) -> None:
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--retries", "1")
    data = load_run(run_folder)
    assert data.totals["flaky"] == 1
    [flaky] = data.flaky
    assert flaky.attempts[0].evidence is not None
    assert flaky.attempts[0].evidence.folder.endswith("attempt-1")
    summary = render_summary(data)
    assert "flaky 1" in summary and "## Flaky (1)" in summary
    assert "attempt 1: `AssertionError: attempt 1 fails" in summary
    from orchestrator.artifacts.report import render_report

    page = render_report(data)
    assert 'data-status="flaky"' in page and "Attempts (2)" in page
    assert ANNOTATED_OUTCOMES["flaky"] == "warning"
    for source in (run_folder, data):  # from junit.xml, and from the report's data
        lines = github_annotations(source)
        assert sorted(line.split(" ", 1)[0] for line in lines) == ["::error", "::warning"]
        [warning] = [line for line in lines if line.startswith("::warning")]
        assert "test_flaky (flaky)" in warning and "attempt 1 fails" in warning


def test_fail_on_flaky_turns_the_run_red(
    pytester: pytest.Pytester, run_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_suite=SUITE.split("def test_broken", maxsplit=1)[0])
    assert pytester.runpytest_subprocess("--retries", "1").ret == pytest.ExitCode.OK
    monkeypatch.setenv("STACK_FAIL_ON_FLAKY", "1")
    monkeypatch.setenv("COUNTERS", str(pytester.mkdir("fresh-counters")))
    result = pytester.runpytest_subprocess("--retries", "1")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stderr.fnmatch_lines(["*1 flaky test(s) and fail-on-flaky is set*"])


def test_without_retries_nothing_changes(pytester: pytest.Pytester, run_folder: Path) -> None:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    assert not list(run_folder.glob("tests/*/attempt-*"))
    assert all("attempts" not in entry for entry in _results(run_folder).values())


def test_retries_precedence(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[tool.ci-stack]\nretries = 3\nfail-on-flaky = true\n")
    none = tmp_path / "none.toml"
    assert OrchestratorConfig.load(env={}, pyproject=none).retries == 0
    assert OrchestratorConfig.load(env={"CI": "true"}, pyproject=none).retries == 2
    loaded = OrchestratorConfig.load(env={"CI": "true"}, pyproject=pyproject)
    assert (loaded.retries, loaded.fail_on_flaky) == (3, True)
    assert OrchestratorConfig.load(env={"STACK_RETRIES": "1"}, pyproject=pyproject).retries == 1
    flagged = OrchestratorConfig.load({"retries": 0}, env={"STACK_RETRIES": "1"}, pyproject=none)
    assert flagged.retries == 0 and flagged.sources is not None
    assert flagged.sources["retries"] == "--retries"


def test_bad_retries_is_a_usage_error(pytester: pytest.Pytester, run_folder: Path) -> None:
    result = pytester.runpytest_subprocess("--retries", "many")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--retries*'many' is not a whole number*"])


def test_merge_keeps_flaky_across_shards(
    pytester: pytest.Pytester, run_folder: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from orchestrator.artifacts.junit import count_outcomes, read_cases
    from tests.orchestrator.test_merge import merge_main, run_into

    pytester.makepyfile(test_suite=SUITE.split("def test_broken", maxsplit=1)[0])
    base = tmp_path / "runs"
    with monkeypatch.context() as mp:
        for index in (1, 2):
            run_into(pytester, mp, base / f"e2e-local-{index}", f"--shard={index}/2", "--retries=1")
    out = tmp_path / "merged"
    status = merge_main(["--out", str(out), *(str(base / f"e2e-local-{i}") for i in (1, 2))])
    assert status == 0  # a flaky test passes the merged run too
    counts = count_outcomes(read_cases(out / "junit.xml"))
    assert (counts["flaky"], counts["passed"], counts["failed"]) == (1, 0, 0)
    assert "flaky 1" in (out / "summary.md").read_text()


WEB = """
import datetime, http.server, json, sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        record = {
            "timestamp": datetime.datetime.now(datetime.UTC).isoformat(),
            "level": "INFO", "logger": "web", "message": "GET " + self.path,
            "correlation_id": None, "test_id": self.headers.get("X-Test-Id"), "extra": {},
        }
        print(json.dumps(record), flush=True)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


http.server.HTTPServer((sys.argv[2], int(sys.argv[1])), Handler).serve_forever()
"""

LOGGING_PROFILE = """
from pathlib import Path

from orchestrator.profile import AppProfile
from orchestrator.spec import HttpProbe, ServiceSpec

WEB = str(Path(__file__).with_name("tiny_web.py"))


class TinyProfile(AppProfile):
    name = "tiny"
    web_service = "web"

    def services(self, config):
        command = ("{python}", WEB, "{port}", "{host}")
        probe = HttpProbe("/", "GET / answers 200")
        return (ServiceSpec(name="web", role="web", command=command, port=8000, probe=probe),)


profile = TinyProfile()
"""

STACK_SUITE = """
import os
from pathlib import Path


def attempt(name):
    counter = Path(os.environ["COUNTERS"]) / name
    n = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(n))
    return n


def test_flaky(api):
    n = attempt("flaky")
    assert api.get(f"/flaky/{n}").status_code == 200
    assert n >= 2, f"attempt {n} fails"


def test_broken(api):
    n = attempt("broken")
    api.get(f"/broken/{n}")
    assert False, f"broken at attempt {n}"
"""


@pytest.mark.slow
def test_each_attempt_gets_its_own_backend_slice_on_a_real_stack(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A self-started local stack whose web service logs each request's X-Test-Id: the
    slices of attempt 1 and 2 land in their own folders and never mix."""
    from orchestrator.contract import EXPORTED_ENV, OWNER_ENV
    from orchestrator.util import test_id_for

    for name in (*EXPORTED_ENV, RUN_ENV, OWNER_ENV, "STACK_ARTIFACTS", "STACK_WORKERS", "CI"):
        monkeypatch.delenv(name, raising=False)
    counters = tmp_path / "counters"
    counters.mkdir()
    monkeypatch.setenv("COUNTERS", str(counters))
    monkeypatch.setenv("STACK_RETRIES", "1")
    folder = tmp_path / "run"
    pytester.makefile(
        ".toml",
        pyproject=f'[tool.ci-stack]\napp = "tiny_profile:profile"\nprovider = "local"\n'
        f'artifacts = "{folder}"\n',
    )
    (pytester.path / "tiny_profile.py").write_text(LOGGING_PROFILE)
    (pytester.path / "tiny_web.py").write_text(WEB)
    pytester.makepyfile(test_stack=STACK_SUITE)

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:playwright")

    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    results = _results(folder)
    assert (results["test_flaky"]["outcome"], results["test_broken"]["outcome"]) == (
        "flaky",
        "failed",
    )

    def paths(slice_file: Path) -> list[tuple[str, str]]:
        records = [json.loads(line) for line in slice_file.read_text().splitlines()]
        return [(r["message"], r["test_id"]) for r in records]

    for name in ("flaky", "broken"):
        base = test_id_for(f"test_stack.py::test_{name}")
        test_dir = folder / results[f"test_{name}"]["attempts"][0]["folder"]
        assert paths(test_dir / "web.jsonl") == [(f"GET /{name}/1", base)]
    broken_top = (folder / results["test_broken"]["attempts"][0]["folder"]).parent
    base = test_id_for("test_stack.py::test_broken")
    assert paths(broken_top / "web.jsonl") == [("GET /broken/2", f"{base}-attempt-2")]
    flaky_top = (folder / results["test_flaky"]["attempts"][0]["folder"]).parent
    assert not (flaky_top / "web.jsonl").exists()  # its passing attempt keeps nothing
    report = (folder / "index.html").read_text()
    assert "Flaky (1)" in report and "attempt-1/web.jsonl" in report
