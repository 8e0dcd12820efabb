"""The tool empties only folders that are provably its own (issue 16, DESIGN §3b).

A run takes an artifacts folder that is new, empty, or holds the marker of an earlier run;
anything else — a checkout, the working directory, a folder of the user's files — is
refused before any stack starts, one line, exit 2, left exactly as it was. Two runs that
race for one folder: the refused one always names the run that holds it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator.folder_lock import MARKER
from tests.fixtures.orchestrator_cli import ORCHESTRATOR, CliProcess, local_run_args, run_cli
from tests.orchestrator.test_misuse import one_line

PASS = (sys.executable, "-c", "pass")
NAMED_HOLDER = re.compile(r"is in use by run (\S+) \(pid \d+ on \S+, started \S+\)")


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under `folder` (hidden ones too) with its content: to see nothing changed."""
    return {
        str(path.relative_to(folder)): path.read_text() if path.is_file() else "<dir>"
        for path in sorted(folder.rglob("*"))
    }


def a_checkout(folder: Path) -> Path:
    """A small project: pyproject.toml, a .git folder, source."""
    (folder / ".git" / "refs").mkdir(parents=True)
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (folder / "pyproject.toml").write_text('[project]\nname = "mine"\n')
    (folder / "src").mkdir()
    (folder / "src" / "app.py").write_text("print('my work')\n")
    return folder


def cli_in(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`python -m orchestrator <args>` run from `cwd` (a project of the test's own)."""
    return subprocess.run(
        [*ORCHESTRATOR, *args],
        cwd=cwd,
        env={
            **os.environ,
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
            "STACK_APP": "backend.stack_profile:profile",  # the project names no profile
        },
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def refused_before_any_stack(stderr: str) -> str:
    """The refusal line; nothing of a stack was started (only the provider choice is said)."""
    started = [line for line in stderr.splitlines() if line.startswith("stack  ")]
    assert all(line.startswith("stack  provider ") for line in started), stderr
    return one_line(stderr)


@pytest.mark.parametrize(
    "contents",
    [
        {"notes.txt": "keep me"},
        {".git/HEAD": "ref: refs/heads/main\n", "src/app.py": "print(1)\n"},
        {"results.jsonl": "{}\n", "notes.txt": "keep me"},  # looks a little like evidence
    ],
    ids=["a-file", "a-checkout", "evidence-and-more"],
)
def test_a_folder_that_is_not_a_runs_is_refused_and_left_untouched(
    tmp_path: Path, contents: dict[str, str]
) -> None:
    folder = tmp_path / "mine"
    for name, text in contents.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    before = snapshot(folder)

    result = run_cli(*local_run_args(folder, *PASS))

    assert result.returncode == 2
    line = refused_before_any_stack(result.stderr)
    assert f"the artifacts folder {folder} is not empty and holds no {MARKER}" in line
    assert "Fix: pass --artifacts a new or empty folder" in line
    assert snapshot(folder) == before  # not even the marker was left behind


def test_up_refuses_a_folder_that_is_not_a_runs_before_starting(tmp_path: Path) -> None:
    folder = a_checkout(tmp_path / "project")
    before = snapshot(folder)

    up = CliProcess("up", "--provider", "local", "--workers", "0", "--artifacts", str(folder))
    try:
        code = up.wait(timeout=30)
    except subprocess.TimeoutExpired:
        up.process.send_signal(signal.SIGINT)  # today's behaviour: it started; stop it cleanly
        up.wait(timeout=60)
        raise AssertionError(f"up started on {folder}:\n{up.stderr}") from None

    assert code == 2
    assert f"the artifacts folder {folder}" in refused_before_any_stack(up.stderr)
    assert snapshot(folder) == before


@pytest.mark.parametrize(
    ("where", "args", "pyproject"),
    [
        (".", ["--artifacts", "."], ""),
        (".", [], '[tool.ci-stack]\nartifacts = "."\n'),
        ("src", ["--artifacts", ".."], ""),  # from a sub-folder of the project
    ],
    ids=["flag-dot", "pyproject-dot", "flag-dot-dot"],
)
def test_a_folder_holding_the_project_is_refused_and_left_untouched(
    tmp_path: Path, where: str, args: list[str], pyproject: str
) -> None:
    project = a_checkout(tmp_path / "project")
    (project / "pyproject.toml").write_text('[project]\nname = "mine"\n' + pyproject)
    (project / MARKER).write_text("")  # as an earlier version's `--artifacts .` left it
    before = snapshot(project)

    result = cli_in(project / where, "run", "--provider", "local", "--workers", "1", *args,
                    "--", *PASS)  # fmt: skip

    assert result.returncode == 2
    line = refused_before_any_stack(result.stderr)
    assert f"contains the project ({project})" in line
    assert "Fix: pass --artifacts a new or empty folder" in line
    assert snapshot(project) == before


def test_a_folder_holding_the_working_directory_is_refused(tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    inside = outer / "earlier-run" / "tests"
    inside.mkdir(parents=True)
    (outer / MARKER).write_text("")  # even a run's folder: emptying it removes the cwd
    before = snapshot(outer)

    result = cli_in(inside, *local_run_args(Path("../.."), *PASS))

    assert result.returncode == 2
    assert f"contains the working directory ({inside})" in refused_before_any_stack(result.stderr)
    assert snapshot(outer) == before


def test_an_empty_working_directory_is_a_fine_artifacts_folder(tmp_path: Path) -> None:
    here = tmp_path / "empty"
    here.mkdir()

    result = cli_in(here, *local_run_args(Path("."), *PASS))

    assert result.returncode == 0, result.stderr
    assert {"index.html", "run.json", MARKER} <= {p.name for p in here.iterdir()}


def test_an_earlier_versions_run_folder_is_recognised_and_cleared(tmp_path: Path) -> None:
    folder = tmp_path / "artifacts"
    (folder / "tests" / "old-test").mkdir(parents=True)
    (folder / "tests" / "old-test" / "test.json").write_text("{}")
    (folder / "summary.md").write_text("# an earlier run\n")
    earlier = {"run_id": "old", "pid": 1, "host": "h", "started_at": "2025-01-01T00:00:00+00:00"}
    (folder / MARKER).write_text(json.dumps(earlier))

    result = run_cli(*local_run_args(folder, *PASS))

    assert result.returncode == 0, result.stderr
    assert not (folder / "tests" / "old-test").exists()
    assert "an earlier run" not in (folder / "summary.md").read_text()
    holder = json.loads((folder / MARKER).read_text())
    assert holder["run_id"] == json.loads((folder / "run.json").read_text())["run_id"] != "old"


# -- a second run always names the holder --------------------------------------------------

CONTENDER = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    from orchestrator.folder_lock import FolderBusy, FolderLock

    folder, go, seconds = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    deadline = time.perf_counter() + 30
    while not go.exists():  # all contenders start at one instant
        assert time.perf_counter() < deadline, "no go"
        time.sleep(0.001)
    refusals, wins, end = [], 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        try:
            with FolderLock.take(folder, f"run-{os.getpid()}-{wins}"):
                wins += 1
        except FolderBusy as exc:
            refusals.append(str(exc))
    print(json.dumps({"wins": wins, "refusals": refusals}))
    """
)


def test_every_refusal_of_a_racing_start_names_the_holding_run(tmp_path: Path) -> None:
    """Real processes take one fresh folder at the same instant, again and again: each
    refusal names a run (today about one in nine reads the holder's empty file)."""
    folder, go = tmp_path / "shared", tmp_path / "go"
    contenders = [
        subprocess.Popen(
            [sys.executable, "-c", CONTENDER, str(folder), str(go), "3"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    go.touch()
    outcomes = [json.loads(p.communicate(timeout=60)[0]) for p in contenders]

    refusals = [line for outcome in outcomes for line in outcome["refusals"]]
    assert sum(outcome["wins"] for outcome in outcomes) > 0
    assert len(refusals) >= 10, "the contenders hardly met: the test proves nothing"
    unnamed = [line for line in refusals if not NAMED_HOLDER.search(line)]
    assert unnamed == [], f"{len(unnamed)} of {len(refusals)} refusals name no run: {unnamed[0]}"


@pytest.mark.slow
def test_concurrent_runs_into_one_folder_refuse_naming_the_live_run(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    runs = [CliProcess(*local_run_args(folder, *PASS)) for _ in range(5)]
    codes = [run.wait(timeout=120) for run in runs]

    refused = [run for run, code in zip(runs, codes, strict=True) if code == 2]
    assert codes.count(0) >= 1 and len(refused) + codes.count(0) == len(runs), codes
    for run in refused:
        line = one_line(run.stderr)
        assert NAMED_HOLDER.search(line), line
