"""Redactor, the artifacts folder (log slices per failed test, summary.md) and test slugs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from orchestrator import util  # not its test_* names: pytest would collect them
from orchestrator.artifacts import FAILED_TEST_FILE, Artifacts
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


# -- log slices for failed tests -----------------------------------------------------------

FAILED = "test-fails-1234abcd"
PASSED = "test-passes-5678ef01"


def _record(message: str, test_id: str | None, **extra: object) -> str:
    return json.dumps({"level": "INFO", "message": message, "test_id": test_id, "extra": extra})


@pytest.fixture
def artifacts(tmp_path: Path) -> Artifacts:
    folder = Artifacts(tmp_path / "artifacts", Redactor([SECRET])).create()
    (folder.logs_dir / "backend.jsonl").write_text(
        "\n".join(
            [
                _record("failed test request", FAILED),
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
        _record("failed test request", FAILED)  # the same record on stdout
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
    return folder


def _mark_failed(artifacts: Artifacts, slug: str, info: dict[str, object]) -> Path:
    folder = artifacts.tests_dir / slug
    folder.mkdir(parents=True)
    (folder / FAILED_TEST_FILE).write_text(json.dumps(info))
    return folder


def _read_records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_slices_keep_only_the_failed_tests_records(artifacts: Artifacts) -> None:
    folder = _mark_failed(artifacts, "t-fails", {"nodeid": "t.py::test_fails", "test_id": FAILED})

    assert artifacts.slice_logs_for_failed_tests() == [folder]

    assert sorted(p.name for p in folder.iterdir()) == [
        "backend.jsonl",
        FAILED_TEST_FILE,
        "worker-1.jsonl",
    ]
    backend = _read_records(folder / "backend.jsonl")
    assert [r["message"] for r in backend] == [
        "failed test request",
        "failed test leaks",
        "only on stdout",
    ]
    assert {r["test_id"] for r in backend} == {FAILED}
    worker = _read_records(folder / "worker-1.jsonl")
    assert worker == [json.loads(_record("worker handled it", FAILED, command_id="c1"))]


def test_slices_are_redacted(artifacts: Artifacts) -> None:
    folder = _mark_failed(artifacts, "t-fails", {"nodeid": "t.py::test_fails", "test_id": FAILED})

    artifacts.slice_logs_for_failed_tests()

    text = (folder / "backend.jsonl").read_text()
    assert SECRET not in text
    assert f"postgresql://u:{MASK}@h/db" in text


def test_no_slices_for_passing_tests_or_markers_without_a_test_id(artifacts: Artifacts) -> None:
    _mark_failed(artifacts, "no-id", {"nodeid": "t.py::test_no_id"})

    assert artifacts.slice_logs_for_failed_tests() == []

    assert sorted(p.name for p in artifacts.tests_dir.rglob("*") if p.is_file()) == [
        FAILED_TEST_FILE
    ]


def test_redact_files_rewrites_text_files_written_by_others(artifacts: Artifacts) -> None:
    junit = artifacts.junit_path
    junit.write_text(f'<testsuite><testcase name="t"><failure message="{SECRET}"/></testcase>')
    screenshot = artifacts.tests_dir / "t" / "shot.png"
    screenshot.parent.mkdir()
    binary = b"\x89PNG\xff\xfe" + SECRET.encode()
    screenshot.write_bytes(binary)

    changed = artifacts.redact_files()

    assert junit in changed
    assert SECRET not in junit.read_text()
    assert MASK in junit.read_text()
    assert screenshot.read_bytes() == binary  # binary evidence is not rewritten


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

FACTS = {"provider": "local", "run_id": "run-42", "timings": {"db ready": 0.5, "total": 2.25}}


def test_summary_totals_and_links_to_each_failed_tests_folder(tmp_path: Path) -> None:
    artifacts = Artifacts(tmp_path, Redactor()).create()
    artifacts.junit_path.write_text(JUNIT)
    failures = {
        "e2e/test_a.py::test_same_name": "e2e-test-a-py-test-same-name",
        "e2e/test_b.py::TestGroup::test_same_name[chromium]": "e2e-test-b-py-group",
        "e2e/test_b.py::test_broken_fixture": "e2e-test-b-py-test-broken-fixture",
    }
    for nodeid, slug in failures.items():
        _mark_failed(artifacts, slug, {"nodeid": nodeid, "test_id": slug})

    summary = artifacts.write_summary("FAILED", FACTS, command_status=1).read_text()

    assert summary.startswith("# e2e run: FAILED\n")
    assert "- tests: 6 · passed 2 · failed 2 · errors 1 · skipped 1 · 3.5s" in summary
    assert "**local** (run `run-42`) db ready 0.50s · total 2.25s" in summary
    assert "- command exit status: 1" in summary
    lines = summary.splitlines()
    for junit_name, slug in [
        ("e2e.test_a::test_same_name", "e2e-test-a-py-test-same-name"),
        ("e2e.test_b.TestGroup::test_same_name[chromium]", "e2e-test-b-py-group"),
        ("e2e.test_b::test_broken_fixture", "e2e-test-b-py-test-broken-fixture"),
    ]:
        [line] = [line for line in lines if line.startswith(f"- `{junit_name}`")]
        assert line.endswith(f"[tests/{slug}/](tests/{slug}/)"), line
    assert "AssertionError: first line second line" in summary  # one line per failure
    assert "[junit.xml](junit.xml)" in summary
    assert (tmp_path / "index.html").exists()


def test_summary_of_a_passing_run_without_junit(tmp_path: Path) -> None:
    artifacts = Artifacts(tmp_path, Redactor()).create()

    summary = artifacts.write_summary("passed", FACTS, command_status=0).read_text()

    assert summary.startswith("# e2e run: passed\n")
    assert "- tests:" not in summary
    assert "junit.xml" not in summary
    assert "## Failures" not in summary


def test_summary_shows_the_stack_error_redacted(tmp_path: Path) -> None:
    artifacts = Artifacts(tmp_path, Redactor([SECRET])).create()

    summary = artifacts.write_summary(
        "FAILED", {}, None, error=f"backend not ready; dsn postgresql://u:{SECRET}@h"
    ).read_text()

    assert "## Stack error" in summary
    assert "backend not ready" in summary
    assert SECRET not in summary
    assert "command exit status" not in summary


def test_read_junit_returns_none_for_missing_or_broken_files(tmp_path: Path) -> None:
    artifacts = Artifacts(tmp_path, Redactor()).create()
    assert artifacts.read_junit() is None

    artifacts.junit_path.write_text("<testsuite")

    assert artifacts.read_junit() is None


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
    assert len(slug.encode()) <= 255
    assert slug not in {".", ".."}
    assert SAFE_NAME.match(test_id), test_id  # fits an HTTP header as is
    assert len(test_id) <= 80


def test_slugs_and_test_ids_differ_per_test() -> None:
    assert len({util.test_slug(n) for n in NODEIDS}) == len(NODEIDS)
    assert len({util.test_id_for(n) for n in NODEIDS}) == len(NODEIDS)


def test_slugify_keeps_head_and_tail_of_long_names() -> None:
    long = "head-" + "m" * 300 + "-tail"

    slug = util.slugify(long, max_length=50)

    assert len(slug) <= 50
    assert slug.startswith("head-")
    assert slug.endswith("-tail")
    assert util.slugify("???") == "test"
