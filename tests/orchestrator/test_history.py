"""The history folder (orchestrator/history.py): one JSON file per run, bounded, atomic,
foreign files untouched, broken files skipped, never raising; and the labels, flakiest and
slowest-growing tests computed from it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchestrator.history import (
    HISTORY_RUNS,
    RUNS_DIR,
    HistoryOutcome,
    HistoryRun,
    flakiest,
    flips,
    label_failure,
    load_history,
    prune,
    recent_outcomes,
    record_run,
    slowest_growing,
)
from tests.fixtures.disk import mounted_tmpfs

START = datetime(2026, 12, 6, 4, 36, 17, tzinfo=UTC)


def a_run(run_id: str, **outcomes: str | HistoryOutcome) -> HistoryRun:
    tests = {
        f"t.py::{name}": o if isinstance(o, HistoryOutcome) else HistoryOutcome(o, 0.5, 1)
        for name, o in outcomes.items()
    }
    return HistoryRun(run_id, "2026-12-06T04:36:17Z", "main", "abc123", tests)


def newest_first(*runs: dict[str, str]) -> list[HistoryRun]:
    return [a_run(f"r{i}", **outcomes) for i, outcomes in enumerate(runs)]


# -- the files ----------------------------------------------------------------------------


def test_a_recorded_run_reads_back_as_plain_json(tmp_path: Path) -> None:
    run = a_run("run-1", a="passed", b=HistoryOutcome("flaky", 1.25, 2), c="failed")
    path = record_run(tmp_path, run, now=START)

    assert path == tmp_path / RUNS_DIR / "20261206T043617000000Z-run-1.json"
    data = json.loads(path.read_text())
    entry = {"duration_s": 0.5, "attempts": 1, "quarantined": False}
    assert data == {
        "schema": 1,
        "run_id": "run-1",
        "finished_at": "2026-12-06T04:36:17Z",
        "branch": "main",
        "commit": "abc123",
        "tests": {
            "t.py::a": {**entry, "outcome": "passed"},
            "t.py::b": {**entry, "outcome": "flaky", "duration_s": 1.25, "attempts": 2},
            "t.py::c": {**entry, "outcome": "failed"},
        },
    }
    assert load_history(tmp_path) == [run]
    assert not [p for p in path.parent.iterdir() if p != path]  # no temp file left behind


def test_runs_read_newest_first(tmp_path: Path) -> None:
    for i in (2, 0, 1):  # written out of order: the file name's time decides
        record_run(tmp_path, a_run(f"r{i}", a="passed"), now=START + timedelta(seconds=i))
    assert [r.run_id for r in load_history(tmp_path)] == ["r2", "r1", "r0"]


def test_a_run_id_with_odd_characters_still_makes_one_file_name(tmp_path: Path) -> None:
    path = record_run(tmp_path, a_run("gh/123 attempt:2", a="passed"), now=START)
    assert path is not None and path.name == "20261206T043617000000Z-gh-123-attempt-2.json"
    assert load_history(tmp_path)[0].run_id == "gh/123 attempt:2"


def test_the_folder_keeps_the_newest_runs_and_never_touches_foreign_files(
    tmp_path: Path,
) -> None:
    runs_dir = tmp_path / RUNS_DIR
    runs_dir.mkdir()
    foreign = [runs_dir / "notes.txt", runs_dir / "2026-backup.json", tmp_path / "other.json"]
    for path in foreign:
        path.write_text("not ours")
    for i in range(HISTORY_RUNS + 5):
        record_run(tmp_path, a_run(f"r{i}", a="passed"), now=START + timedelta(seconds=i))

    runs = load_history(tmp_path)
    assert len(runs) == HISTORY_RUNS
    assert runs[0].run_id == f"r{HISTORY_RUNS + 4}" and runs[-1].run_id == "r5"
    assert all(path.read_text() == "not ours" for path in foreign)
    assert prune(tmp_path, keep=3) and len(load_history(tmp_path)) == 3
    assert all(path.exists() for path in foreign)


def test_broken_and_foreign_files_are_skipped(tmp_path: Path) -> None:
    record_run(tmp_path, a_run("good", a="passed", b="failed"), now=START)
    runs_dir = tmp_path / RUNS_DIR
    bad = {
        "20261206T043618000000Z-truncated.json": '{"schema": 1, "run_id": "x", "tes',
        "20261206T043619000000Z-schema-2.json": json.dumps(
            {"schema": 2, "run_id": "x", "finished_at": "", "tests": {}}
        ),
        "20261206T043620000000Z-a-list.json": "[1, 2]",
        "20261206T043621000000Z-binary.json": "\udcff",
        "readme.json": json.dumps(a_run("not-a-run-file-name").to_json()),
    }
    for name, text in bad.items():
        (runs_dir / name).write_text(text, errors="surrogateescape")
    (runs_dir / "20261206T043622000000Z-a-folder.json").mkdir()
    entries = {  # one bad entry drops that test, not the run
        "t.py::a": {"outcome": "passed", "duration_s": 0.1, "attempts": 1},
        "t.py::b": {"outcome": "exploded"},
        "t.py::c": {"outcome": "failed", "duration_s": "slow"},
        "t.py::d": "failed",
    }
    (runs_dir / "20261206T043623000000Z-partly.json").write_text(
        json.dumps({"schema": 1, "run_id": "partly", "finished_at": "x", "tests": entries})
    )

    runs = load_history(tmp_path)
    assert [r.run_id for r in runs] == ["partly", "good"]
    assert list(runs[0].tests) == ["t.py::a"]


def test_a_missing_folder_is_an_empty_history(tmp_path: Path) -> None:
    assert load_history(tmp_path / "nowhere") == []


def test_a_folder_that_cannot_be_written_returns_none_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    in_the_way = tmp_path / "history"
    in_the_way.write_text("a file where the folder should be")
    assert record_run(in_the_way, a_run("r", a="passed")) is None
    assert load_history(in_the_way) == []
    err = capsys.readouterr().err
    assert err.startswith(f"history  not recorded in {in_the_way}: ") and err.count("\n") == 1


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KB tmpfs of this test's own (root only), unmounted afterwards."""
    with mounted_tmpfs(tmp_path, "64k") as mount:
        yield mount


def test_a_full_folder_keeps_the_runs_it_has_and_leaves_no_temp_file(
    tmpfs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = record_run(tmpfs, a_run("small", a="passed"), now=START)
    assert first is not None
    big = {f"t{i}": HistoryOutcome("passed", 0.1) for i in range(5000)}  # ~400 KB
    huge = HistoryRun("huge", "2026-12-06T04:36:18Z", None, None, big)

    assert record_run(tmpfs, huge, now=START + timedelta(seconds=1)) is None
    assert "No space left on device" in capsys.readouterr().err
    assert [r.run_id for r in load_history(tmpfs)] == ["small"]
    assert sorted(p.name for p in (tmpfs / RUNS_DIR).iterdir()) == [first.name]


def test_a_read_only_folder_is_read_but_not_written(
    tmpfs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_run(tmpfs, a_run("before", a="failed"), now=START)
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)

    assert record_run(tmpfs, a_run("after", a="passed")) is None
    assert "Read-only file system" in capsys.readouterr().err
    assert [r.run_id for r in load_history(tmpfs)] == ["before"]


# -- what the history says ----------------------------------------------------------------


def test_recent_outcomes_are_the_runs_that_ran_the_test_newest_first() -> None:
    runs = newest_first({"a": "failed"}, {"b": "passed"}, {"a": "passed"}, {"a": "flaky"})
    assert recent_outcomes(runs, "t.py::a", 10) == [
        ("r0", "failed"),
        ("r2", "passed"),
        ("r3", "flaky"),
    ]
    assert recent_outcomes(runs, "t.py::a", 2) == [("r0", "failed"), ("r2", "passed")]
    assert recent_outcomes(runs, "t.py::unknown", 10) == []


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([], 0),
        (["passed", "passed"], 0),
        (["passed", "failed", "failed"], 1),
        (["passed", "failed", "passed"], 2),
        (["passed", "skipped", "failed", "xfailed", "passed"], 2),
        (["error", "passed"], 1),
        (["passed", "flaky", "passed"], 1),
    ],
)
def test_flips(outcomes: list[str], expected: int) -> None:
    assert flips(outcomes) == expected


@pytest.mark.parametrize(
    ("history", "label"),
    [
        ([], "new"),  # never seen
        (["passed", "passed", "passed"], "new"),
        (["skipped"], "new"),
        (["failed"], "failing before"),
        (["error", "failed", "failed"], "failing before"),
        (["failed", "passed", "passed"], "failing before"),  # broke last run, still broken
        (["passed", "failed", "passed"], "known flaky"),  # flipped twice
        (["failed", "passed", "failed"], "known flaky"),
        (["passed", "flaky", "passed"], "known flaky"),
        (["passed"] * 10 + ["flaky"], "new"),  # the flaky run is older than the last 10
        (["failed"] + ["passed"] * 9 + ["failed"], "failing before"),
    ],
)
def test_labels(history: list[str], label: str) -> None:
    runs = newest_first(*({"a": outcome} for outcome in history))
    assert label_failure(runs, "t.py::a") == label


def test_flakiest_ranks_by_flips_and_leaves_steady_tests_out() -> None:
    runs = newest_first(
        {"steady": "passed", "broke": "failed", "flip": "passed", "flaky": "flaky"},
        {"steady": "passed", "broke": "passed", "flip": "failed", "flaky": "passed"},
        {"steady": "passed", "broke": "passed", "flip": "passed", "flaky": "flaky"},
    )
    ranked = flakiest(runs)
    assert [(f.nodeid, f.flips, f.flaky, f.runs) for f in ranked] == [
        ("t.py::flaky", 2, 2, 3),
        ("t.py::flip", 2, 0, 3),
        ("t.py::broke", 1, 0, 3),
    ]
    assert len(flakiest(runs, limit=1)) == 1


def test_slowest_growing_compares_the_last_five_runs_with_the_five_before() -> None:
    def durations(*seconds: float) -> list[HistoryOutcome]:
        return [HistoryOutcome("passed", s) for s in seconds]

    growing = durations(2.0, 2.1, 1.9, 2.0, 2.2, 1.0, 1.1, 0.9, 1.0, 1.0)  # newest first
    steady = durations(*[1.0] * 10)
    short = durations(*[5.0] * 5, *[1.0] * 4)  # nine runs: not enough to tell
    runs = [
        HistoryRun(
            f"r{i}",
            "x",
            None,
            None,
            {"t.py::growing": growing[i], "t.py::steady": steady[i]}
            | ({"t.py::short": short[i]} if i < len(short) else {}),
        )
        for i in range(10)
    ]
    found = slowest_growing(runs)
    assert [(g.nodeid, g.recent_s, g.before_s) for g in found] == [("t.py::growing", 2.0, 1.0)]
    assert found[0].ratio == 2.0
