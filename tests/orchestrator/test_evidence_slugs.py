"""One evidence folder per test: node ids that differ only in characters a slug drops
(`[a b]`, `[a/b]`, `[A-B]`, `[a-b]`, `[/]`, `[]::[]`, emoji) never share `tests/<slug>/`,
and the report gives each its own anchor and only its own evidence."""

from __future__ import annotations

import json
import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

from orchestrator import util  # not its test_* names: pytest would collect them
from orchestrator.artifacts import FAILED_TEST_FILE, load_run, render_report
from orchestrator.contract import RUN_ENV
from tests.orchestrator.test_pytest_plugin import run_inner

pytest_plugins = ["pytester"]

CASES = ["a b", "a/b", "A-B", "a-b", "/", "]::[", "😀", "🎉"]
NODEIDS = [f"test_ids.py::test_it[{case}]" for case in CASES]

INNER = f"""
import json
import pytest
from orchestrator.pytest_evidence import write_test_file

CASES = {CASES!r}

@pytest.mark.parametrize("case", CASES, ids=lambda case: case)
def test_it(case, request):
    event = {{"type": "log", "message": f"evidence-of-case-{{CASES.index(case)}}"}}
    write_test_file(request.config, request.node.nodeid, "console.jsonl", json.dumps(event))
    assert False, case
"""
# pytest escapes non-ASCII ids unless told not to; emoji ids are what users write.
RAW_IDS = "[pytest]\ndisable_test_id_escaping_and_forfeit_all_rights_to_community_support = true\n"


@pytest.fixture
def run_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """As under `orchestrator run`: the run's folder in STACK_ARTIFACTS_DIR, CI_STACK_RUN_ID."""
    folder = tmp_path / "artifacts"
    for name in ("STACK_BACKEND_URL", "STACK_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STACK_ARTIFACTS_DIR", str(folder))
    monkeypatch.setenv(RUN_ENV, "run-slugs")
    return folder


def test_ids_that_slugify_alike_get_a_folder_and_an_anchor_each(
    pytester: pytest.Pytester, run_folder: Path
) -> None:
    pytester.makeini(RAW_IDS)
    pytester.makepyfile(test_ids=INNER)

    run_inner(pytester).assert_outcomes(failed=len(CASES))

    folders = sorted(p for p in (run_folder / "tests").iterdir() if p.is_dir())
    assert len(folders) == len(CASES), [p.name for p in folders]
    owners = {}
    for folder in folders:
        nodeid = json.loads((folder / FAILED_TEST_FILE).read_text())["nodeid"]
        owners[nodeid] = folder.name
        assert folder.name == util.test_slug(nodeid)
        mark = f"evidence-of-case-{NODEIDS.index(nodeid)}"
        assert mark in (folder / "console.jsonl").read_text()  # its own, nobody else's
    assert sorted(owners) == sorted(NODEIDS)

    page = render_report(load_run(run_folder))
    ids = _ids(page)
    assert [name for name, count in Counter(ids).items() if count > 1] == []
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name) for name in ids), ids
    links = set(re.findall(r'href="#([^"]+)"', page))
    assert len({name for name in links if name.startswith("t-")}) == len(CASES)
    assert links <= set(ids)  # every link into the page lands on its test
    articles = re.findall(r'<article class="failure[^"]*" id="([^"]+)">(.*?)</article>', page, re.S)
    assert len(articles) == len(CASES)
    for _anchor, body in articles:  # each failure shows its own timeline only
        assert len(set(re.findall(r"evidence-of-case-\d+", body))) == 1, body


def _ids(page: str) -> list[str]:
    found: list[str] = []

    class Ids(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.extend(value for name, value in attrs if name == "id" and value is not None)

    Ids().feed(page)
    return found


SLUG = re.compile(r"^[a-z0-9-]+$")


@pytest.mark.parametrize("nodeid", [*NODEIDS, "", "..", "x" * 1000, "é" * 300 + "::t"])
def test_a_slug_is_safe_bounded_and_readable(nodeid: str) -> None:
    slug = util.test_slug(nodeid)

    assert SLUG.match(slug), slug  # one case everywhere: case-insensitive filesystems too
    assert len(slug) <= 100
    assert slug not in {".", ".."}
    assert slug.startswith("test-ids-py-test-it" if nodeid in NODEIDS else "")
    assert util.test_slug(nodeid) == slug  # stable


def test_slugs_differ_for_ids_that_differ_only_in_dropped_characters() -> None:
    slugs = {util.test_slug(nodeid) for nodeid in NODEIDS}

    assert len(slugs) == len(NODEIDS)
