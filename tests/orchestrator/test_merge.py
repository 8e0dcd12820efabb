"""`orchestrator merge`: real sharded pytest runs (pytester) merged into one folder."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from orchestrator import merge
from orchestrator.artifacts.junit import count_outcomes, read_cases

pytest_plugins = ["pytester"]

SUITE = {
    "test_ok": (
        "import pytest\n\n@pytest.mark.parametrize('n', range(8))\n"
        "def test_many(n):\n    assert n >= 0\n"
    ),
    "test_mixed": (
        "import pytest\n\n"
        "def test_fails():\n    assert 1 + 1 == 3, 'arithmetic is broken'\n\n"
        "@pytest.mark.skip(reason='not today')\n"
        "def test_skipped():\n    pass\n\n"
        "def test_passes():\n    pass\n"
    ),
}


def run_into(pytester: pytest.Pytester, mp: pytest.MonkeyPatch, folder: Path, *args: str) -> None:
    """One inner session with STACK_ARTIFACTS_DIR=folder: the ci_stack plugin writes
    folder/junit.xml and tests/<slug>/test.json for each failure, as under `orchestrator run`."""
    mp.setenv("STACK_ARTIFACTS_DIR", str(folder))
    folder.mkdir(parents=True)
    pytester.runpytest("-p", "no:cacheprovider", "-p", "no:playwright", *args)
    (folder / "stack.json").write_text(json.dumps({"provider": "local", "run_id": folder.name}))
    (folder / "index.html").write_text("<!doctype html><title>shard</title>")  # as `run` writes


@pytest.fixture
def shards(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.delenv("STACK_SHARD", raising=False)
    pytester.makepyfile(**SUITE)
    base = tmp_path / "runs"
    with monkeypatch.context() as mp:
        run_into(pytester, mp, base / "whole")
        for index in (1, 2):
            run_into(pytester, mp, base / f"e2e-local-{index}", f"--shard={index}/2")
    return base


def test_merged_totals_equal_one_unsharded_run(shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "merged"
    status = merge.main(["--out", str(out), *(str(shards / f"e2e-local-{i}") for i in (1, 2))])

    assert status == merge.EXIT_RED  # one test fails
    whole = read_cases(shards / "whole" / "junit.xml")
    merged = read_cases(out / "junit.xml")
    assert sorted(c.junit_name for c in merged) == sorted(c.junit_name for c in whole)
    assert count_outcomes(merged) == count_outcomes(whole) == {
        "passed": 9, "failed": 1, "error": 0, "skipped": 1,
    }
    root = ET.parse(out / "junit.xml").getroot()
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("11", "1", "1")
    suites = sorted(s.get("name", "") for s in root.iter("testsuite"))
    assert suites == ["e2e-local-1", "e2e-local-2"]


def test_summary_and_listing_link_into_the_shard_that_ran_the_failure(
    shards: Path, tmp_path: Path
) -> None:
    out = tmp_path / "merged"
    merged = merge.merge_shards([shards / "e2e-local-1", shards / "e2e-local-2"], out)
    failing_shard = next(
        name
        for name in ("e2e-local-1", "e2e-local-2")
        if any((shards / name / "tests").glob("*/test.json"))
    )
    (evidence,) = (out / "shards" / failing_shard / "tests").iterdir()
    relative = evidence.relative_to(out).as_posix()

    summary = (out / "summary.md").read_text()
    assert summary.startswith("# e2e run (merged, 2 shards): FAILED")
    assert "tests: 11 · passed 9 · failed 1 · errors 0 · skipped 1" in summary
    assert f"]({relative}/)" in summary
    assert "arithmetic is broken" in summary

    listing = merge.render_listing(merged)
    assert listing.count("<tr class=") == 11  # every test, once
    assert f'href="{relative}/"' in listing
    shard_reports = [f'href="shards/e2e-local-{i}/index.html"' for i in (1, 2)]
    assert sum(listing.count(link) for link in shard_reports) == 10  # passed and skipped ones
    for target in _hrefs(listing):
        assert (out / target).exists(), target  # no dead link inside the merged folder
    if merge.report_api() is None:
        assert (out / "index.html").read_text() == listing


def test_a_shard_without_results_makes_the_verdict_red(shards: Path, tmp_path: Path) -> None:
    empty = tmp_path / "e2e-docker-2"
    empty.mkdir()
    out = tmp_path / "merged"
    passing_only = [str(shards / "e2e-local-1"), str(empty)]

    assert merge.main(["--out", str(out), *passing_only]) == merge.EXIT_RED
    summary = (out / "summary.md").read_text()
    assert "| e2e-docker-2 | ? | no junit.xml (did the shard run?) |" in summary


def test_merge_refuses_bad_arguments_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shard = tmp_path / "shard"
    shard.mkdir()
    cases = [
        (["--out", str(tmp_path / "o"), str(tmp_path / "missing")], "is not a folder"),
        (["--out", str(shard / "inside"), str(shard)], "is inside the shard folder"),
        (["--out", str(tmp_path), str(shard)], "exists and is not empty"),
    ]
    for argv, expected in cases:
        assert merge.main(argv) == merge.EXIT_USAGE
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err, err
    with pytest.raises(SystemExit) as exited:
        merge.main(["--out"])
    assert exited.value.code == merge.EXIT_USAGE
    assert capsys.readouterr().err.count("\n") == 1


def test_two_shards_with_the_same_folder_name_stay_apart(shards: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "e2e-local-1"
    other.parent.mkdir()
    shutil.copytree(shards / "e2e-local-2", other)
    out = tmp_path / "merged"
    merge.main(["--out", str(out), str(shards / "e2e-local-1"), str(other)])
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["e2e-local-1", "e2e-local-1-2"]
    assert len(read_cases(out / "junit.xml")) == 11


def _hrefs(page: str) -> list[str]:
    return re.findall(r'href="([^"]+)"', page)


def test_fewer_shards_than_expected_is_red(shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "merged"
    only_one = str(shards / "e2e-local-1")
    assert merge.main(["--out", str(out), "--expect", "2", only_one]) == merge.EXIT_RED
    assert "- **1 of 2 expected shards never arrived**" in (out / "summary.md").read_text()


def test_annotate_prints_the_failures_on_github(
    shards: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    both = [str(shards / "e2e-local-1"), str(shards / "e2e-local-2")]
    merge.main(["--annotate", "--out", str(tmp_path / "merged"), *both])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("::")]
    assert lines == [
        "::error file=test_mixed.py,line=4,title=test_mixed.py%3A%3Atest_fails::"
        "AssertionError: arithmetic is broken%0Aassert (1 + 1) == 3"
    ]


@pytest.mark.skipif(merge.report_api() is None, reason="the evidence report is not installed")
def test_index_is_the_evidence_report_over_all_shards(shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "merged"
    merge.main(["--out", str(out), *(str(shards / f"e2e-local-{i}") for i in (1, 2))])
    index = (out / "index.html").read_text()
    links = [target for target in _hrefs(index) if not target.startswith("#")]
    assert any(re.fullmatch(r"shards/e2e-local-[12]/tests/[^/]+/test\.json", t) for t in links)
    for target in links:
        assert (out / target).exists(), target  # the report's links work from the merged root
    assert "test_fails" in index and "test_many" in index
