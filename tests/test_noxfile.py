"""The noxfile's own logic: which pytest arguments the e2e session passes, and when it
reuses a stack that `nox -s up` started."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import noxfile

DEFAULTS = ["e2e", "tests/integration"]


@pytest.mark.parametrize(
    ("posargs", "expected"),
    [
        ([], DEFAULTS),
        (["-k", "smoke", "-x"], [*DEFAULTS, "-k", "smoke", "-x"]),
        (["--lf"], [*DEFAULTS, "--lf"]),
        (["e2e/test_smoke.py::test_x"], ["e2e/test_smoke.py::test_x"]),
        (["e2e/test_smoke.py", "-x"], ["e2e/test_smoke.py", "-x"]),
        (["-m", "e2e", "tests/integration"], ["tests/integration", "-m", "e2e"]),
        (["-n", "2"], [*DEFAULTS, "-n", "2"]),
        (["--repeat-each", "5"], [*DEFAULTS, "--repeat-each", "5"]),
        (["--quarantine", "pyproject.toml"], [*DEFAULTS, "--quarantine", "pyproject.toml"]),
    ],
)
def test_paths_replace_the_defaults_and_options_keep_them(
    posargs: list[str], expected: list[str]
) -> None:
    root = Path(noxfile.__file__).parent
    cwd = Path.cwd()
    os.chdir(root)
    try:
        assert noxfile.split_pytest_args(posargs, DEFAULTS) == expected
    finally:
        os.chdir(cwd)


def test_a_stale_up_state_is_not_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "up.json"
    monkeypatch.setattr(noxfile, "UP_STATE", state)
    assert noxfile._healthy_up_stack() is None  # no file

    state.write_text(json.dumps({"pid": 2**22 + 12345, "environment": {}}))
    assert noxfile._healthy_up_stack() is None  # no such process

    dead_url = {"STACK_BACKEND_URL": "http://127.0.0.1:9", "STACK_RUN_ID": "r"}
    state.write_text(json.dumps({"pid": os.getpid(), "environment": dead_url}))
    assert noxfile._healthy_up_stack() is None  # nothing answers


@pytest.mark.parametrize(("cpus", "workers"), [(1, 1), (2, 1), (4, 2), (8, 4), (64, 4)])
def test_the_default_worker_count_comes_from_the_machine(cpus: int, workers: int) -> None:
    assert noxfile.default_e2e_workers(cpus) == workers


def test_parallel_runs_keep_global_state_tests_apart() -> None:
    assert noxfile.with_parallelism(["e2e"], 1) == ["e2e"]
    assert noxfile.with_parallelism(["e2e"], 2) == ["e2e", "-n", "2", "--dist", "loadgroup"]
    assert noxfile.with_parallelism(["e2e", "-n", "4"], 1) == [
        "e2e",
        "-n",
        "4",
        "--dist",
        "loadgroup",
    ]
    assert noxfile.with_parallelism(["-n", "3", "--dist", "load"], 2) == [
        "-n",
        "3",
        "--dist",
        "load",
    ]
