"""Every misuse ends in one line naming the problem and the fix, with the documented exit
code, and leaves nothing behind — never a traceback. Cases from fault injection (issue 11)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.fixtures.checkout import make_checkout, run_cli_in
from tests.fixtures.orchestrator_cli import local_run_args, run_cli
from tests.fixtures.stack_checks import live_pids_of_run

pytest_plugins = ["pytester"]


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("stack  ")]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert "Traceback" not in stderr
    return lines[0]


def test_an_artifacts_folder_under_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")

    result = run_cli(*local_run_args(tmp_path / "file" / "artifacts", "true"))

    assert result.returncode == 2
    line = one_line(result.stderr)
    assert f"cannot write the artifacts folder {tmp_path / 'file' / 'artifacts'}" in line
    assert "Fix: pass --artifacts" in line


def test_an_artifacts_path_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "artifacts").write_text("not a folder")

    result = run_cli(*local_run_args(tmp_path / "artifacts", "true"))

    assert result.returncode == 2
    assert "cannot write the artifacts folder" in one_line(result.stderr)
    assert (tmp_path / "artifacts").read_text() == "not a folder"  # nothing lost


def test_an_unwritable_artifacts_folder_is_one_line() -> None:
    # /proc refuses new entries even to root, as a read-only folder refuses a user.
    result = run_cli(*local_run_args(Path("/proc/ci-stack-artifacts"), "true"))

    assert result.returncode == 2
    assert "cannot write the artifacts folder /proc/ci-stack-artifacts" in one_line(result.stderr)


def test_a_missing_pg_tmpdir_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope"

    result = run_cli(*local_run_args(tmp_path / "a", "true"), env={"STACK_PG_TMPDIR": str(missing)})

    assert result.returncode == 2
    line = [x for x in result.stderr.splitlines() if x.startswith("ci-stack:")]
    assert (
        len(line) == 1
        and f"the database folder {missing} (STACK_PG_TMPDIR) does not exist" in line[0]
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("command", "code", "says"),
    [
        (["no-such-command-xyz"], 127, "command not found: no-such-command-xyz"),
        (["/no/such/file"], 127, "command not found: /no/such/file (no such file)"),
        (["./README.md"], 126, "command not executable: ./README.md"),
    ],
)
def test_a_command_that_cannot_run_exits_like_a_shell_before_any_stack_starts(
    tmp_path: Path, command: list[str], code: int, says: str
) -> None:
    result = run_cli(*local_run_args(tmp_path / "a", *command))

    assert result.returncode == code
    assert says in one_line(result.stderr)
    assert not (tmp_path / "a").exists()  # no stack was started for it


def test_a_directory_is_not_executable(tmp_path: Path) -> None:
    result = run_cli(*local_run_args(tmp_path / "a", str(tmp_path)))

    assert result.returncode == 126


def test_too_many_workers_for_the_database_is_refused_up_front(tmp_path: Path) -> None:
    result = run_cli("run", "--provider", "local", "--workers", "80", "--artifacts",
                     str(tmp_path / "a"), "--", "true")  # fmt: skip

    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "--workers 80 would need up to" in line
    assert "use --workers 23 or fewer" in line


@pytest.mark.slow
def test_a_command_killed_by_a_signal_exits_128_plus_n(tmp_path: Path) -> None:
    result = run_cli(*local_run_args(tmp_path / "a", "sh", "-c", "kill -9 $$"), timeout=90)

    assert result.returncode == 137, result.stderr
    facts = json.loads((tmp_path / "a" / "stack.json").read_text())
    assert facts["command_status"] == 137
    assert facts["verdict"] == "failed"


@pytest.mark.slow
def test_background_processes_of_the_command_do_not_outlive_the_run(tmp_path: Path) -> None:
    pid_file = tmp_path / "bg.pid"
    script = f"nohup sleep 300 >/dev/null 2>&1 & echo $! > {pid_file}"

    result = run_cli(*local_run_args(tmp_path / "a", "sh", "-c", script), timeout=90)

    assert result.returncode == 0, result.stderr
    pid = int(pid_file.read_text())
    assert (
        not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    )
    facts = json.loads((tmp_path / "a" / "stack.json").read_text())
    assert live_pids_of_run(facts["run_id"]) == []


@pytest.mark.slow
def test_a_second_run_into_a_held_folder_is_refused_naming_the_live_run(tmp_path: Path) -> None:
    from tests.fixtures.orchestrator_cli import CliProcess

    folder = tmp_path / "shared"
    first = CliProcess("up", "--provider", "local", "--workers", "0", "--json",
                       "--artifacts", str(folder))  # fmt: skip
    try:
        run_id = json.loads(first.next_stdout_line(timeout=60))["STACK_RUN_ID"]

        second = run_cli(*local_run_args(folder, "true"))
    finally:
        first.kill()

    assert second.returncode == 2
    line = one_line(second.stderr)
    assert f"the artifacts folder {folder} is in use by run {run_id} (pid " in line
    assert "pass --artifacts another folder" in line


def test_the_cli_without_its_dependencies_says_how_to_install_them(tmp_path: Path) -> None:
    import subprocess
    import sys

    # A python that finds our code but none of its dependencies (no site-packages).
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-S", "-m", "orchestrator", "run", "--", "true"],
        cwd=root, capture_output=True, text=True, timeout=30, check=False,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip

    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "is not installed. Fix: pip install ci-stack " in line
    assert stat.S_ISDIR((root / "orchestrator").stat().st_mode)


@pytest.mark.docker
def test_clean_with_images_checks_docker_and_touches_no_other_checkouts_images(
    tmp_path: Path,
) -> None:
    from orchestrator.images import checkout_id
    from orchestrator.providers.docker import docker_answers

    ok, why = docker_answers()
    if not ok:
        pytest.skip(why)
    # A checkout of the test's own, which built nothing: every image on the daemon is another's.
    root = make_checkout(tmp_path / "checkout")

    result = run_cli_in(root, "clean", "--run-id", "no-such-run", "--images", timeout=300)

    assert result.returncode == 0, result.stderr
    assert "Docker: checked" in result.stderr
    assert f"images of checkout {checkout_id(root)}: removed 0, kept " in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


# -- an app profile that does not load (issue 16) ------------------------------------------

BROKEN_PROFILES = {
    "syntax": ("from orchestrator.profile import AppProfile\nprofile = AppProfile(\n", 2,
               "SyntaxError: '(' was never closed"),
    "raises": ("import os\n\nraise RuntimeError('no config for ' + 'this app')\n", 3,
               "RuntimeError: no config for this app"),
}  # fmt: skip


def _broken_profile(tmp_path: Path, kind: str, form: str) -> tuple[str, str, dict[str, str]]:
    """(--app reference, the file:line it must name, env) for a profile broken as `kind`,
    named as a file path or as a module on PYTHONPATH."""
    source, line, _ = BROKEN_PROFILES[kind]
    module = f"ci_stack_broken_{kind}_profile"
    path = tmp_path / f"{module}.py"
    path.write_text(source)
    if form == "file":
        return f"{path}:profile", f"{path}:{line}", {}
    pythonpath = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    return f"{module}:profile", f"{path}:{line}", {"PYTHONPATH": pythonpath}


@pytest.mark.parametrize("form", ["file", "module"])
@pytest.mark.parametrize("kind", sorted(BROKEN_PROFILES))
def test_a_profile_that_does_not_load_is_one_line_with_its_place(
    tmp_path: Path, kind: str, form: str
) -> None:
    reference, place, env = _broken_profile(tmp_path, kind, form)

    result = run_cli(*local_run_args(tmp_path / "a", "true")[:-2], "--app", reference,
                     "--", "true", env=env)  # fmt: skip

    assert result.returncode == 2
    line = one_line(result.stderr)
    assert f"app profile {reference!r} failed to import: {place}: " in line
    assert BROKEN_PROFILES[kind][2] in line
    assert "Fix: " in line
    assert not (tmp_path / "a").exists()  # no stack was started for it


def test_a_profile_factory_that_raises_is_one_line_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "factory_profile.py"
    path.write_text("def make():\n    return {}['missing']\n")

    result = run_cli("compose", "--app", f"{path}:make")

    assert result.returncode == 2
    line = one_line(result.stderr)
    assert f"failed when make() ran: {path}:2: KeyError: 'missing'" in line


@pytest.mark.parametrize("workers", [None, "2"])
def test_the_pytest_plugin_reports_a_broken_profile_in_one_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    workers: str | None,
) -> None:  # fmt: skip
    reference, place, _ = _broken_profile(tmp_path, "syntax", "file")
    for name in ("STACK_BACKEND_URL", "STACK_RUN_ID", "STACK_ARTIFACTS_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STACK_APP", reference)
    monkeypatch.setenv("STACK_ARTIFACTS", str(tmp_path / "artifacts"))
    pytester.makepyfile(test_uses_stack="def test_a(stack):\n    pass\n\n"
                        "def test_b(stack):\n    pass\n")  # fmt: skip
    args = ["-p", "no:cacheprovider", "-p", "no:playwright"]

    result = pytester.runpytest_subprocess(*args, *(["-n", workers] if workers else []))

    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output and "Traceback" not in output, output
    mentions = [line for line in output.splitlines() if "failed to import" in line]
    assert mentions and all(f"{place}: SyntaxError" in line for line in mentions), output
    if workers is None:  # the session ends as a usage error, before any test runs
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        assert len(mentions) == 1
    else:  # an xdist worker cannot end the session: each test needing the stack fails
        result.assert_outcomes(errors=2)
