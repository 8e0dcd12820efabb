"""`orchestrator merge`: real sharded pytest runs (pytester) merged into one folder."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from orchestrator import github, merge
from orchestrator.artifacts.junit import count_outcomes, read_cases
from orchestrator.cli import EXIT_USAGE
from orchestrator.cli import main as cli_main
from tests.fixtures.orchestrator_cli import run_cli


def merge_main(argv: list[str]) -> int:
    """`merge ARGV...` through the CLI's one parser, in this process."""
    return cli_main(["merge", *argv])


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
    status = merge_main(["--out", str(out), *(str(shards / f"e2e-local-{i}") for i in (1, 2))])

    assert status == merge.EXIT_RED  # one test fails
    whole = read_cases(shards / "whole" / "junit.xml")
    merged = read_cases(out / "junit.xml")
    assert sorted(c.junit_name for c in merged) == sorted(c.junit_name for c in whole)
    assert (
        count_outcomes(merged)
        == count_outcomes(whole)
        == {
            "passed": 9,
            "failed": 1,
            "error": 0,
            "skipped": 1,
            "flaky": 0,
        }
    )
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

    assert merge_main(["--out", str(out), *passing_only]) == merge.EXIT_RED
    summary = (out / "summary.md").read_text()
    assert (
        "| e2e-docker-2 | ? | the folder is empty (did the leg upload its artifacts?) |" in summary
    )


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
        assert merge_main(argv) == EXIT_USAGE
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err, err
    with pytest.raises(SystemExit) as exited:
        merge_main(["--out"])
    assert exited.value.code == EXIT_USAGE
    assert capsys.readouterr().err.count("\n") == 1


def test_two_shards_with_the_same_folder_name_stay_apart(shards: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "e2e-local-1"
    other.parent.mkdir()
    shutil.copytree(shards / "e2e-local-2", other)
    out = tmp_path / "merged"
    merge_main(["--out", str(out), str(shards / "e2e-local-1"), str(other)])
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["e2e-local-1", "e2e-local-1-2"]
    assert len(read_cases(out / "junit.xml")) == 11


def _hrefs(page: str) -> list[str]:
    return re.findall(r'href="([^"]+)"', page)


def test_fewer_shards_than_expected_is_red(shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "merged"
    only_one = str(shards / "e2e-local-1")
    assert merge_main(["--out", str(out), "--expect", "2", only_one]) == merge.EXIT_RED
    assert "- 1 of 2 expected shards never arrived" in (out / "summary.md").read_text()


def test_annotate_prints_the_failures_on_github(
    shards: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    both = [str(shards / "e2e-local-1"), str(shards / "e2e-local-2")]
    merge_main(["--annotate", "--out", str(tmp_path / "merged"), *both])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("::")]
    assert lines == [
        "::error file=test_mixed.py,line=4,title=test_mixed.py%3A%3Atest_fails::"
        "AssertionError: arithmetic is broken%0Aassert (1 + 1) == 3"
    ]


@pytest.mark.skipif(merge.report_api() is None, reason="the evidence report is not installed")
def test_index_is_the_evidence_report_over_all_shards(shards: Path, tmp_path: Path) -> None:
    out = tmp_path / "merged"
    merge_main(["--out", str(out), *(str(shards / f"e2e-local-{i}") for i in (1, 2))])
    index = (out / "index.html").read_text()
    links = [target for target in _hrefs(index) if not target.startswith("#")]
    assert any(re.fullmatch(r"shards/e2e-local-[12]/tests/[^/]+/test\.json", t) for t in links)
    for target in links:
        assert (out / target).exists(), target  # the report's links work from the merged root
    assert "test_fails" in index and "test_many" in index


# -- issue 16: a merge never passes or counts silently wrong; the CLI as a subprocess --------


def merge_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run_cli("merge", *(str(arg) for arg in args))


def passing_and_failing(shards: Path) -> tuple[Path, Path]:
    """(the shard whose tests all passed, the one that ran the failing test)."""
    one, two = shards / "e2e-local-1", shards / "e2e-local-2"
    return (two, one) if any((one / "tests").glob("*/test.json")) else (one, two)


def counts_everywhere(out: Path) -> dict[str, int]:
    """The number of tests each merged file states (and the testcases junit.xml holds)."""
    summary = (out / "summary.md").read_text()
    index = (out / "index.html").read_text()
    root = ET.parse(out / "junit.xml").getroot()
    header = re.search(r"<span>tests <b>(\d+) — ", index)
    stated = re.search(r"^- tests: (\d+) ·", summary, re.MULTILINE)
    assert stated is not None, summary
    return {
        "summary.md": int(stated[1]),
        "index.html": int(header[1]) if header else index.count("<tr class="),
        "junit.xml tests=": int(root.get("tests", "-1")),
        "junit.xml testcases": len(root.findall(".//testcase")),
    }


def why_red(out: Path) -> list[str]:
    """The bullets of summary.md's "Why this merge is red" section, as rendered text."""
    rendered = MarkdownIt("commonmark").render((out / "summary.md").read_text())
    section = rendered.split("<h2>Why this merge is red</h2>", 1)
    assert len(section) == 2, rendered
    items = section[1].split("</ul>", 1)[0]
    return [html.unescape(item) for item in re.findall(r"<li>(.*?)</li>", items, re.DOTALL)]


def test_a_test_in_two_shards_is_refused_naming_it_and_the_shards(
    shards: Path, tmp_path: Path
) -> None:
    green, _ = passing_and_failing(shards)
    again = tmp_path / "again" / "e2e-local-9"
    shutil.copytree(green, again)
    out = tmp_path / "merged"

    result = merge_cli("--out", out, green, again)

    assert result.returncode == merge.EXIT_RED, result.stderr
    names = sorted(case.junit_name for case in read_cases(green / "junit.xml"))
    said = f"{len(names)} tests ({', '.join(names[:3])}"
    shards_named = f"ran in more than one shard: {green.name}, e2e-local-9"
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("merge  red: ")]
    assert said in line and shards_named in line, line
    (reason,) = why_red(out)
    assert said in reason and shards_named in reason
    index = (out / "index.html").read_text()
    assert html.escape(said) in index and html.escape(shards_named) in index
    assert (out / "summary.md").read_text().startswith("# e2e run (merged, 2 shards): FAILED")


@pytest.mark.parametrize(
    ("expect", "says"),
    [
        ("-1", "argument --expect: '-1' is not a whole number of 1 or more"),
        ("0", "argument --expect: '0' is not a whole number of 1 or more"),
        ("two", "argument --expect: 'two' is not a whole number of 1 or more"),
        ("2", "--expect 2 but 3 shard folders were given. Fix: pass --expect 3"),
    ],
)
def test_expect_is_at_least_one_and_not_fewer_than_the_folders(
    shards: Path, tmp_path: Path, expect: str, says: str
) -> None:
    three = [shards / "e2e-local-1", shards / "e2e-local-2", shards / "whole"]
    out = tmp_path / "merged"

    result = merge_cli("--expect", expect, "--out", out, *three)

    assert result.returncode == EXIT_USAGE
    assert result.stderr.count("\n") == 1 and says in result.stderr, result.stderr
    assert not out.exists()  # nothing written for a bad command line


def _empty_shard(shards: Path, tmp_path: Path) -> tuple[list[Path], str]:
    empty = tmp_path / "e2e-local-3"
    empty.mkdir()
    return [shards / "e2e-local-1", shards / "e2e-local-2", empty], (
        "shard e2e-local-3 gave no results: the folder is empty"
    )


def _truncated_junit(shards: Path, tmp_path: Path) -> tuple[list[Path], str]:
    green, red = passing_and_failing(shards)
    cut = tmp_path / "cut" / green.name
    shutil.copytree(green, cut)  # its results.jsonl still lists every test
    junit = cut / "junit.xml"
    junit.write_bytes(junit.read_bytes()[: junit.stat().st_size // 2])
    return [cut, red], (
        f"shard {green.name} gave no results: {green.name}/junit.xml is not valid junit XML"
    )


def _missing_leg(shards: Path, tmp_path: Path) -> tuple[list[Path], str]:
    green, _ = passing_and_failing(shards)
    return [green], "1 of 2 expected shards never arrived"


def _failed_test(shards: Path, tmp_path: Path) -> tuple[list[Path], str]:
    return [shards / "e2e-local-1", shards / "e2e-local-2"], "1 test(s) failed"


@pytest.mark.parametrize(
    "case", [_empty_shard, _truncated_junit, _missing_leg, _failed_test], ids=lambda c: c.__name__
)
def test_a_red_merge_says_why_and_counts_the_same_everywhere(
    shards: Path, tmp_path: Path, case: object
) -> None:
    folders, reason = case(shards, tmp_path)  # type: ignore[operator]
    out = tmp_path / "merged"
    expect = ["--expect", "2"] if case is _missing_leg else []

    result = merge_cli(*expect, "--out", out, *folders)

    assert result.returncode == merge.EXIT_RED, result.stderr
    assert "Traceback" not in result.stderr
    assert any(reason in line for line in why_red(out)), why_red(out)
    index = (out / "index.html").read_text()
    assert html.escape(reason) in index and "This merge is red because:" in index
    assert any(line.startswith(f"merge  red: {reason}") for line in result.stderr.splitlines())
    counts = counts_everywhere(out)
    assert len(set(counts.values())) == 1, counts


def test_failure_text_stays_one_code_block_in_the_merged_summary(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("STACK_SHARD", raising=False)
    pytester.makepyfile(test_hostile=HOSTILE_TEST)
    shard = tmp_path / "e2e-local-1"
    with monkeypatch.context() as mp:
        run_into(pytester, mp, shard)
    out = tmp_path / "merged"

    assert merge_cli("--out", out, shard).returncode == merge.EXIT_RED

    assert_one_code_block((out / "summary.md").read_text())


def test_failure_text_stays_one_code_block_in_a_single_run_summary(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from orchestrator.artifacts import load_run, render_summary

    monkeypatch.delenv("STACK_SHARD", raising=False)
    pytester.makepyfile(test_hostile=HOSTILE_TEST)
    shard = tmp_path / "run"
    with monkeypatch.context() as mp:
        run_into(pytester, mp, shard)

    assert_one_code_block(render_summary(load_run(shard)))


# A failure message that would end a ``` fence, open raw HTML and close the <details>.
HOSTILE_MESSAGE = "```\\n</details>\\n<img src=x onerror=alert(1)>\\n# not a heading | a | b |"
HOSTILE_TEST = f"def test_hostile():\n    raise AssertionError('{HOSTILE_MESSAGE}')\n"


def assert_one_code_block(markdown: str) -> None:
    """A CommonMark renderer shows the message whole, in code blocks only: no raw HTML of it
    and no heading or table made of it."""
    tokens = MarkdownIt("commonmark").parse(markdown)
    raw_html = " ".join(t.content for t in tokens if t.type == "html_block")
    raw_html += " ".join(
        child.content
        for t in tokens
        if t.type == "inline"
        for child in t.children or ()
        if child.type == "html_inline"
    )
    assert "<img" not in raw_html, raw_html
    assert raw_html.count("</details>") == raw_html.count("<details>"), raw_html
    code = [t.content for t in tokens if t.type in ("fence", "code_block")]
    whole = "```\n</details>\n<img src=x onerror=alert(1)>\n# not a heading | a | b |"
    assert any(whole in block for block in code), code
    rendered = MarkdownIt("commonmark").render(markdown)
    assert "<h1>not a heading" not in rendered and "<img" not in rendered


def test_merge_copies_symlinks_as_links_or_not_at_all(shards: Path, tmp_path: Path) -> None:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("the target's content, never to be copied\n")
    shard = tmp_path / "linked" / "e2e-local-1"
    shutil.copytree(shards / "e2e-local-1", shard)
    (shard / "etc-link").symlink_to(secret.parent)  # a folder outside
    (shard / "secret-link").symlink_to(secret)  # a file outside
    (shard / "sneaky-link").symlink_to(Path("..") / ".." / "outside" / "secret.txt")
    (shard / "report-link").symlink_to("index.html")  # inside the shard: kept as a link
    out = tmp_path / "merged"

    result = merge_cli("--out", out, shard)

    copied = out / "shards" / "e2e-local-1"
    for name in ("etc-link", "secret-link", "sneaky-link"):
        assert not (copied / name).exists() and not (copied / name).is_symlink(), name
    assert (copied / "report-link").is_symlink()
    assert os.readlink(copied / "report-link") == "index.html"
    leaked = [p for p in out.rglob("*") if p.is_file() and "never to be copied" in p.read_text()]
    assert leaked == []
    assert (
        "not copied, symbolic link(s) pointing outside it: etc-link, secret-link, sneaky-link"
        in (result.stderr)
    )


# -- issue 18: "Re-run failed jobs" on GitHub: the same run, a higher attempt ----------------


@pytest.fixture
def rerun(
    shards: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> dict[str, Path]:
    """The legs as a re-run leaves them: the green leg of attempt 1, the red leg's attempt 1
    and its attempt 2 (run again, real pytest, now passing: a flaky leg), and the merged
    artifact of attempt 1 among the downloads (what `pattern: e2e-*` used to fetch)."""
    green, red = passing_and_failing(shards)
    legs = {green: "e2e-leg-local-green", red: "e2e-leg-local-red"}
    for folder, leg in legs.items():
        github.record_leg(folder, leg, env={"GITHUB_RUN_ID": "7", "GITHUB_RUN_ATTEMPT": "1"})
    pytester.makepyfile(test_mixed=SUITE["test_mixed"].replace("1 + 1 == 3", "1 + 1 == 2"))
    again = tmp_path / "attempt-2" / red.name
    with monkeypatch.context() as mp:
        run_into(pytester, mp, again, f"--shard={red.name[-1]}/2")
    github.record_leg(again, legs[red], env={"GITHUB_RUN_ID": "7", "GITHUB_RUN_ATTEMPT": "2"})
    earlier_merge = tmp_path / "downloads" / "e2e-merged"
    merge.merge_shards([green, red], earlier_merge, expected=2)
    return {"green": green, "red": red, "again": again, "earlier_merge": earlier_merge}


@pytest.mark.parametrize("order", ["attempt 1 first", "attempt 2 first"])
def test_a_rerun_leg_counts_once_from_its_latest_attempt(
    rerun: dict[str, Path], tmp_path: Path, order: str
) -> None:
    green, red, again = rerun["green"], rerun["red"], rerun["again"]
    attempts = [red, again] if order == "attempt 1 first" else [again, red]
    out = tmp_path / "merged"

    result = merge_cli("--expect", "2", "--out", out, green, *attempts, rerun["earlier_merge"])

    assert result.returncode == 0, result.stderr  # one verdict: the re-run passed
    assert count_outcomes(read_cases(out / "junit.xml")) == {
        "passed": 10,
        "failed": 0,
        "error": 0,
        "skipped": 1,
        "flaky": 0,
    }
    assert sorted(p.name for p in (out / "shards").iterdir()) == sorted([green.name, red.name])
    summary = (out / "summary.md").read_text()
    assert summary.startswith("# e2e run (merged, 2 shards): passed")
    assert f"shard {red.name} is from a re-run of its leg (attempt 2)" in summary
    assert (
        f"left out {red.name}: attempt 1 of leg e2e-leg-local-red, superseded by its "
        "attempt 2" in summary
    )
    assert "left out e2e-merged: an earlier merge's output, not a leg's artifacts" in summary
    assert " | 2 (re-run) |" in summary and " | 1 |" in summary
    assert f"merge  shard {red.name} is from a re-run of its leg (attempt 2)" in result.stderr
    facts = json.loads((out / merge.MERGE_FILE).read_text())
    assert facts["verdict"] == "passed"
    assert [(s["leg"], s["run_attempt"], s["rerun"]) for s in facts["shards"]] == [
        ("e2e-leg-local-green", 1, False),
        ("e2e-leg-local-red", 2, True),
    ]
    assert len(facts["left_out"]) == 2
    assert "(re-run, attempt 2)" in (out / "index.html").read_text()


def test_without_the_rerun_the_same_legs_are_red(rerun: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "merged"
    result = merge_cli("--expect", "2", "--out", out, rerun["green"], rerun["red"])
    assert result.returncode == merge.EXIT_RED
    assert "re-run" not in result.stderr and "re-run" not in (out / "summary.md").read_text()


def test_a_merged_folder_is_never_merged_as_a_leg(rerun: dict[str, Path], tmp_path: Path) -> None:
    assert merge.is_merged_folder(rerun["earlier_merge"])
    assert not merge.is_merged_folder(rerun["green"])
    out = tmp_path / "merged"
    # Only the earlier merge: nothing to count, and one leg expected never arrived.
    assert merge_main(["--expect", "1", "--out", str(out), str(rerun["earlier_merge"])]) == 1
    assert "1 of 1 expected shards never arrived" in (out / "summary.md").read_text()


def test_a_leg_that_never_started_uploads_its_record_alone(shards: Path, tmp_path: Path) -> None:
    died = tmp_path / "e2e-leg-docker-2"
    github.record_leg(died, "e2e-leg-docker-2", env={"GITHUB_RUN_ATTEMPT": "3"})
    out = tmp_path / "merged"
    assert merge_main(["--out", str(out), str(shards / "e2e-local-1"), str(died)]) == 1
    summary = (out / "summary.md").read_text()
    assert "| e2e-docker-2 |" not in summary
    assert f"shard e2e-leg-docker-2 gave no results: {merge.EMPTY_SHARD}" in summary
    assert "| 3 (re-run) |" in summary
