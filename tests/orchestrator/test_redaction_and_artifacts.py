"""Redactor, the artifacts folder (this run's log slices per failed test, results, summary.md)
and test slugs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from orchestrator import util  # not its test_* names: pytest would collect them
from orchestrator.artifacts import (
    FAILED_TEST_FILE,
    Artifacts,
    RunInfo,
    belongs_to_run,
    collect_slices,
    failed_test_folders,
    finish_run,
    load_run,
)
from orchestrator.artifacts.text import shorten
from orchestrator.redaction import MASK, Redactor

SECRET = "p@ss/w:rd+x y"  # has characters that URL-encoding changes, both ways


# -- Redactor ------------------------------------------------------------------------------


def test_redactor_masks_the_secret_and_its_url_encoded_forms() -> None:
    redact = Redactor([SECRET])
    text = (
        f"plain {SECRET} | dsn postgresql://u:{quote(SECRET, safe='')}@h/db"
        f" | form pw={quote_plus(SECRET)}"
    )

    masked = redact(text)

    assert masked == f"plain {MASK} | dsn postgresql://u:{MASK}@h/db | form pw={MASK}"


def test_redactor_masks_every_occurrence_of_every_secret() -> None:
    redact = Redactor(["first-secret", "second-secret"])

    masked = redact("first-secret second-secret first-secret")

    assert masked == f"{MASK} {MASK} {MASK}"


def test_redactor_masks_a_longer_secret_that_contains_a_shorter_one_whole() -> None:
    redact = Redactor(["abcd", "abcd-efgh"])

    assert redact("x abcd-efgh y") == f"x {MASK} y"


def test_redactor_leaves_other_text_and_too_short_secrets_alone() -> None:
    redact = Redactor(["ab", ""])
    redact.add("xyz")

    assert redact("about abc xyz") == "about abc xyz"
    assert Redactor()("nothing to hide") == "nothing to hide"


def test_redactor_accepts_secrets_added_later() -> None:
    redact = Redactor()
    redact.add("late-secret")

    assert redact("a late-secret") == f"a {MASK}"


# -- the artifacts folder ------------------------------------------------------------------

FAILED_NODEID = "e2e/test_a.py::test_fails[chromium]"
PASSED_NODEID = "e2e/test_a.py::test_passes"
FAILED = util.test_id_for(FAILED_NODEID)
PASSED = util.test_id_for(PASSED_NODEID)
RUN = "run-2"


def _record(message: str, test_id: str | None, run_id: str | None = RUN, **extra: object) -> str:
    record: dict[str, object] = {
        "timestamp": f"2026-01-01T00:00:0{len(message) % 10}.000Z",
        "level": "INFO",
        "logger": "backend.x",
        "message": message,
        "correlation_id": "c-1",
        "test_id": test_id,
        "extra": extra,
    }
    if run_id is not None:
        record["run_id"] = run_id
    return json.dumps(record)


def _result(nodeid: str, outcome: str, **fields: object) -> str:
    return json.dumps(
        {"nodeid": nodeid, "test_id": util.test_id_for(nodeid), "outcome": outcome, **fields}
    )


@pytest.fixture
def artifacts(tmp_path: Path) -> Artifacts:
    """A run folder: one failed and one passed test, logs of this run and an earlier one."""
    folder = Artifacts(tmp_path / "artifacts", Redactor([SECRET])).create()
    (folder.logs_dir / "backend.jsonl").write_text(
        "\n".join(
            [
                _record("failed test request", FAILED),
                _record("earlier run, same test", FAILED, run_id="run-1"),
                _record("written before stamping", FAILED, run_id=None),
                _record("passing test request", PASSED),
                _record("no test", None),
                f"not json but mentions {FAILED}",
                _record(f"message mentions {FAILED}", PASSED),  # another test's record
                json.dumps([FAILED]),  # JSON, not a record
                json.dumps({"marker": "gap", "source": "backend", "note": FAILED}),
                _record("failed test leaks", FAILED, dsn=f"postgresql://u:{SECRET}@h/db"),
            ]
        )
        + "\n"
    )
    (folder.logs_dir / "backend.log").write_text(
        _record("failed test request", FAILED, run_id=None)  # the same record on stdout
        + "\n"
        + _record("only on stdout", FAILED)
        + "\nplain stdout line\n"
    )
    (folder.logs_dir / "worker-1.log").write_text(
        "Traceback-looking plain text\n"
        + _record("worker handled it", FAILED, command_id="c1")
        + "\n"
        + _record("worker handled other", PASSED)
        + "\n"
    )
    (folder.logs_dir / "migrate.log").write_text(_record("migrated", None) + "\n")
    folder.results_path.write_text(
        _result(PASSED_NODEID, "passed", duration=0.5, location="e2e/test_a.py:3")
        + "\n"
        + _result(FAILED_NODEID, "failed", message="assert 1 == 2", location="e2e/test_a.py:9")
        + "\n"
    )
    return folder


def _run(**fields: object) -> RunInfo:
    values: dict[str, object] = {
        "run_id": RUN, "provider": "local", "verdict": "failed", "app": "backend",
    }  # fmt: skip
    return RunInfo(**{**values, **fields})  # type: ignore[arg-type]


def _read_records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_slices_keep_only_this_runs_records_of_the_failed_test(artifacts: Artifacts) -> None:
    finish_run(artifacts, _run())

    folder = artifacts.test_dir(FAILED_NODEID)
    assert sorted(p.name for p in folder.iterdir()) == ["backend.jsonl", "worker-1.jsonl"]
    backend = _read_records(folder / "backend.jsonl")
    assert [r["message"] for r in backend] == [
        "failed test request",  # once, though both backend.jsonl and backend.log have it
        "written before stamping",  # no run id: kept (logs from before stamping)
        "failed test leaks",
        "only on stdout",
    ]
    assert {r["test_id"] for r in backend} == {FAILED}
    worker = _read_records(folder / "worker-1.jsonl")
    assert [r["message"] for r in worker] == ["worker handled it"]
    assert not artifacts.test_dir(PASSED_NODEID).exists()


def test_without_a_known_run_id_records_of_every_run_are_kept(artifacts: Artifacts) -> None:
    slices = collect_slices(artifacts.logs_dir, [FAILED], run_id=None)

    messages = [r["message"] for r in slices[FAILED]["backend"]]
    assert "earlier run, same test" in messages
    assert belongs_to_run({"run_id": "a"}, "a")
    assert not belongs_to_run({"run_id": "a"}, "b")
    assert belongs_to_run({}, "b")


def test_slices_can_come_from_another_folders_logs(artifacts: Artifacts, tmp_path: Path) -> None:
    own = Artifacts(tmp_path / "pytest", Redactor([SECRET]))
    own.root.mkdir()
    own.results_path.write_text(artifacts.results_path.read_text())

    finish_run(own, _run(), logs_dir=artifacts.logs_dir)

    sliced = own.test_dir(FAILED_NODEID) / "backend.jsonl"
    assert "failed test request" in sliced.read_text()
    assert not own.logs_dir.exists()
    assert "[logs/](../artifacts/logs/)" in (own.root / "summary.md").read_text()
    assert 'href="../artifacts/logs/"' in (own.root / "index.html").read_text()


def test_slices_and_every_written_file_are_redacted(artifacts: Artifacts) -> None:
    finished = finish_run(artifacts, _run(error=f"backend died; dsn postgresql://u:{SECRET}@h"))

    for path in artifacts.root.rglob("*"):
        if path.is_file() and path.parent != artifacts.logs_dir:
            assert SECRET not in path.read_text(), path
    assert (
        f"postgresql://u:{MASK}@h/db"
        in (artifacts.test_dir(FAILED_NODEID) / "backend.jsonl").read_text()
    )
    assert SECRET not in finished.github_summary


def test_failure_markers_without_results_still_get_slices(artifacts: Artifacts) -> None:
    artifacts.results_path.unlink()
    marker = artifacts.test_dir(FAILED_NODEID) / FAILED_TEST_FILE
    marker.parent.mkdir(parents=True)
    marker.write_text(json.dumps({"nodeid": FAILED_NODEID, "test_id": FAILED}))

    assert failed_test_folders(artifacts) == {FAILED: marker.parent}


def test_redact_files_rewrites_text_files_written_by_others(artifacts: Artifacts) -> None:
    junit = artifacts.junit_path
    junit.write_text(f'<testsuite><testcase name="t"><failure message="{SECRET}"/></testcase>')
    screenshot = artifacts.tests_dir / "t" / "shot.png"
    screenshot.parent.mkdir()
    binary = b"\x89PNG\xff\xfe" + SECRET.encode()
    screenshot.write_bytes(binary)

    changed = artifacts.redact_files(skip=artifacts.logs_dir)

    assert changed == [junit]
    assert SECRET not in junit.read_text()
    assert MASK in junit.read_text()
    assert screenshot.read_bytes() == binary  # binary evidence is not rewritten
    assert SECRET in (artifacts.logs_dir / "backend.jsonl").read_text()  # skipped


def test_written_files_are_redacted_and_whole(tmp_path: Path) -> None:
    artifacts = Artifacts(tmp_path, Redactor([SECRET]))

    path = artifacts.write_json("a/b.json", {"dsn": f"postgresql://u:{SECRET}@h"})
    artifacts.append_line("lines.jsonl", json.dumps({"pw": SECRET}))

    assert json.loads(path.read_text()) == {"dsn": f"postgresql://u:{MASK}@h"}
    assert SECRET not in (tmp_path / "lines.jsonl").read_text()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["b.json"]  # no temp left


# -- results ---------------------------------------------------------------------------------


def test_load_run_lists_failures_first_and_a_later_line_wins(artifacts: Artifacts) -> None:
    artifacts.append_line(
        "results.jsonl", _result(PASSED_NODEID, "error", phase="teardown", message="boom")
    )

    data = load_run(artifacts.root, info=_run())

    assert [(t.nodeid, t.outcome) for t in data.tests] == [
        (FAILED_NODEID, "failed"),
        (PASSED_NODEID, "error"),
    ]
    assert data.totals["error"] == 1
    assert data.totals["failed"] == 1


def test_load_run_falls_back_to_junit(tmp_path: Path) -> None:
    artifacts = Artifacts(tmp_path, Redactor()).create()
    artifacts.junit_path.write_text(JUNIT)

    data = load_run(tmp_path)

    assert data.totals.tests == 6
    assert (data.totals["failed"], data.totals["error"], data.totals["skipped"]) == (2, 1, 1)
    assert data.info.verdict == "error"  # nothing said how the run went


def test_run_info_round_trips_and_rejects_unknown_verdicts() -> None:
    info = _run(command=["pytest", "-x"], timings={"total": 1.5}, command_status=1)

    assert RunInfo.from_json(json.loads(json.dumps(info.to_json()))) == info
    with pytest.raises(ValueError, match="verdict"):
        _run(verdict="FAILED")


# -- summary.md ----------------------------------------------------------------------------

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites>
  <testsuite name="pytest" errors="1" failures="2" skipped="1" tests="6" time="3.5">
    <testcase classname="e2e.test_a" name="test_ok" time="0.1"/>
    <testcase classname="e2e.test_a" name="test_same_name" time="0.1">
      <failure message="AssertionError: first line&#10;second line">trace</failure>
    </testcase>
    <testcase classname="e2e.test_b.TestGroup" name="test_same_name[chromium]" time="0.1">
      <failure message="boom">trace</failure>
    </testcase>
    <testcase classname="e2e.test_b" name="test_broken_fixture" time="0.1">
      <error message="fixture exploded">trace</error>
    </testcase>
    <testcase classname="e2e.test_b" name="test_skipped" time="0.0">
      <skipped message="not today"/>
    </testcase>
    <testcase classname="e2e.test_b" name="test_ok_too" time="0.1"/>
  </testsuite>
</testsuites>
"""

HOSTILE = (
    "AssertionError: Locator expected <h3>Done</h3> and 2*3 == 6 *not* 5\n"
    "```\n</details><script>alert(1)</script>\n| a | b |\n" + "word " * 60
)


def _summary_of(artifacts: Artifacts, link_base: str | None = "", **run: object) -> str:
    finished = finish_run(artifacts, _run(**run), artifact_url=link_base)
    return finished.github_summary if link_base != "" else finished.summary.read_text()


def test_summary_title_totals_and_pasteable_node_ids(artifacts: Artifacts) -> None:
    summary = _summary_of(artifacts, timings={"db ready": 0.5, "total": 2.25}, command_status=1)

    assert summary.startswith("# e2e run: FAILED · backend on local\n")
    assert "- tests: 2 · passed 1 · failed 1 · errors 0 · skipped 0" in summary
    assert "**local** (run `run-2`) db ready 0.50s · total 2.25s" in summary
    assert "- command exit status: 1" in summary
    assert f"### 1. `{FAILED_NODEID}` (failed)" in summary  # the real node id, not junit's
    assert f"Rerun: `nox -s e2e -- '{FAILED_NODEID}'`" in summary
    slug = util.test_slug(FAILED_NODEID)
    assert f"Evidence: [tests/{slug}/](tests/{slug}/)" in summary
    assert "[index.html](index.html)" in summary


def test_summary_links_resolve_where_it_is_read(artifacts: Artifacts) -> None:
    slug = util.test_slug(FAILED_NODEID)
    github = _summary_of(artifacts, link_base=None)
    assert "](" not in github  # no link that would resolve against github.com
    assert f"Evidence: `tests/{slug}/`" in github

    uploaded = _summary_of(artifacts, link_base="https://example.test/artifact/7/")
    assert f"[tests/{slug}/](https://example.test/artifact/7/tests/{slug}/)" in uploaded


def test_summary_keeps_hostile_failure_text_inert_and_whole(artifacts: Artifacts) -> None:
    artifacts.append_line(
        "results.jsonl", _result(FAILED_NODEID, "failed", message=HOSTILE, longrepr=HOSTILE)
    )

    summary = _summary_of(artifacts)

    details = summary[summary.index("<details>") : summary.index("</details>\n\n\nFiles")]
    fence_line = next(line for line in details.splitlines() if line.startswith("````"))
    assert fence_line == "````text"  # longer than the ``` inside the message
    assert HOSTILE.rstrip() in details  # the full message, not cut
    reason = details.splitlines()[1]
    assert reason.startswith("<summary>AssertionError: Locator expected &lt;h3&gt;Done&lt;/h3&gt;")
    assert reason.endswith(" …</summary>")
    assert "<h3>" not in reason
    assert summary.count("<details>") == 1 and summary.count("</details>\n") == 1


def test_summary_keeps_the_whole_message_of_a_long_failure(artifacts: Artifacts) -> None:
    frame = "".join(f"    line {n} of a long code frame {'x' * 150}\n" for n in range(200))
    message = "AssertionError: " + "the real reason " * 40
    artifacts.append_line(
        "results.jsonl",
        _result(FAILED_NODEID, "failed", message=message, longrepr=frame + "E   " + message),
    )

    summary = _summary_of(artifacts)

    assert message.strip() in summary
    assert "earlier line(s) in tests/" in summary
    assert "line 199 of a long code frame" in summary
    assert "line 0 of a long code frame" not in summary


def test_summary_details_the_first_failures_and_names_the_rest(tmp_path: Path) -> None:
    artifacts = Artifacts(tmp_path, Redactor()).create()
    for n in range(35):
        artifacts.append_line("results.jsonl", _result(f"t.py::test_{n}", "failed", message="no"))

    summary = finish_run(artifacts, _run()).summary.read_text()

    assert summary.count("<details>") == 30
    assert "35. `t.py::test_34` (failed)" in summary


def test_summary_shows_the_stack_error_redacted(tmp_path: Path) -> None:
    artifacts = Artifacts(tmp_path, Redactor([SECRET])).create()

    summary = finish_run(
        artifacts, _run(verdict="error", error=f"backend not ready; dsn postgresql://u:{SECRET}@h")
    ).summary.read_text()

    assert summary.startswith("# e2e run: FAILED (error) · backend on local")
    assert "## Stack error" in summary
    assert "backend not ready" in summary
    assert SECRET not in summary
    assert "command exit status" not in summary
    assert "- tests:" not in summary
    assert "junit.xml" not in summary


def test_summary_of_a_passing_run(tmp_path: Path) -> None:
    artifacts = Artifacts(tmp_path, Redactor()).create()
    artifacts.append_line("results.jsonl", _result(PASSED_NODEID, "passed"))

    summary = finish_run(artifacts, _run(verdict="passed", command_status=0)).summary.read_text()

    assert summary.startswith("# e2e run: PASSED")
    assert "- tests: 1 · passed 1 · failed 0" in summary
    assert "## Failures" not in summary


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("two words here", 9, "two words …"),
        ("first\nsecond", 50, "first …"),
        ("x" * 30, 10, "x" * 10 + " …"),  # one very long word: cut, marked
    ],
)
def test_shorten_cuts_between_words(text: str, limit: int, expected: str) -> None:
    assert shorten(text, limit) == expected


# -- slugs and test ids --------------------------------------------------------------------

NODEIDS = [
    "e2e/test_demo.py::test_demo[chromium]",
    "e2e/test_demo.py::test_demo[firefox]",
    "tests/a b/test_x.py::TestK::test_ünïcode[param/with/slashes-1]",
    "tests/test_long.py::test_" + "x" * 400 + "[a]",
    "tests/test_long.py::test_" + "x" * 400 + "[b]",
]
SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


@pytest.mark.parametrize("nodeid", NODEIDS)
def test_slug_and_test_id_are_stable_and_safe(nodeid: str) -> None:
    slug, test_id = util.test_slug(nodeid), util.test_id_for(nodeid)

    assert (util.test_slug(nodeid), util.test_id_for(nodeid)) == (slug, test_id)
    assert SAFE_NAME.match(slug), slug
    assert slug == slug.lower()  # distinct on case-insensitive filesystems too
    assert len(slug) <= 100
    assert slug not in {".", ".."}
    assert re.search(r"-[0-9a-f]{10}$", slug), slug  # a hash of the whole node id ends it
    assert SAFE_NAME.match(test_id), test_id  # fits an HTTP header as is
    assert len(test_id) <= 80


def test_slugs_and_test_ids_differ_per_test() -> None:
    assert len({util.test_slug(n) for n in NODEIDS}) == len(NODEIDS)
    alike = ["t.py::t[a b]", "t.py::t[a/b]", "t.py::t[A-B]", "t.py::t[a-b]"]
    assert len({util.test_slug(n) for n in alike}) == len(alike)  # same readable part
    assert len({util.test_id_for(n) for n in NODEIDS}) == len(NODEIDS)


def test_slugify_keeps_head_and_tail_of_long_names() -> None:
    long = "head-" + "m" * 300 + "-tail"

    slug = util.slugify(long, max_length=50)

    assert len(slug) <= 50
    assert slug.startswith("head-")
    assert slug.endswith("-tail")
    assert util.slugify("???") == "test"
