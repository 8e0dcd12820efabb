"""The `ci_stack_shard` plugin (`--shard I/N`), tested with pytester and on its planner.

Inner sessions run in-process (`runpytest`); the plugin is loaded by its `pytest11` entry
point like in any project that installs this package.
"""

from __future__ import annotations

import json
import re

import pytest

from orchestrator.pytest_shard import Shard, parse_shard, plan_shards, stable_hash

pytest_plugins = ["pytester"]

# 24 tests in 3 files, two of them parametrized: enough for balance to mean something.
SUITE = {
    "test_alpha": "def test_one():\n    pass\n\ndef test_two():\n    pass\n",
    "test_beta": (
        "import pytest\n\n@pytest.mark.parametrize('n', range(12))\ndef test_param(n):\n    pass\n"
    ),
    "test_gamma": (
        "import pytest\n\n@pytest.mark.parametrize('n', range(10))\n"
        "def test_other(n):\n    assert n >= 0\n"
    ),
}


def run_inner(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", "-p", "no:playwright", *args)


def collected_ids(pytester: pytest.Pytester, *args: str) -> list[str]:
    result = run_inner(pytester, "--collect-only", "-q", *args)
    return [line for line in result.outlines if "::" in line]


def ran_ids(result: pytest.RunResult) -> list[str]:
    return [m.group(1) for line in result.outlines if (m := re.match(r"(\S+::\S+) PASSED", line))]


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("STACK_SHARD", raising=False)
    pytester.makepyfile(**SUITE)
    return pytester


def test_shards_are_disjoint_and_cover_the_collection(suite: pytest.Pytester) -> None:
    everything = collected_ids(suite)
    assert len(everything) == 24
    for count in (2, 3):
        parts = []
        for index in range(1, count + 1):
            result = run_inner(suite, "-v", f"--shard={index}/{count}")
            ran = ran_ids(result)
            result.assert_outcomes(passed=len(ran), deselected=24 - len(ran))
            parts.append(ran)
        flat = [nodeid for part in parts for nodeid in part]
        assert sorted(flat) == sorted(everything)  # every test once: no gaps, no duplicates
        assert max(map(len, parts)) - min(map(len, parts)) <= 1  # no durations: equal counts


def test_the_same_shard_selects_the_same_tests_every_time(suite: pytest.Pytester) -> None:
    first = collected_ids(suite, "--shard=2/3")
    assert collected_ids(suite, "--shard=2/3") == first
    assert 0 < len(first) < 24


def test_env_variable_is_the_fallback_and_the_option_wins(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_option = collected_ids(suite, "--shard=1/2")
    monkeypatch.setenv("STACK_SHARD", "1/2")
    assert collected_ids(suite) == by_option
    monkeypatch.setenv("STACK_SHARD", "bogus")  # the option wins, the env is not even parsed
    assert collected_ids(suite, "--shard=2/2") == collected_ids(suite, "--shard", "2/2")


def test_durations_balance_the_shards(suite: pytest.Pytester) -> None:
    everything = collected_ids(suite)
    # One heavy test (10 s) and the rest light: the heavy one gets a shard nearly to itself.
    durations = {nodeid: 0.5 for nodeid in everything}
    heavy = "test_gamma.py::test_other[3]"
    durations[heavy] = 10.0
    (suite.path / ".test_durations").write_text(json.dumps(durations))

    shard_times = []
    for index in (1, 2):
        chosen = collected_ids(suite, f"--shard={index}/2")
        shard_times.append(sum(durations[n] for n in chosen))
        if heavy in chosen:
            assert len(chosen) < 12  # it carries the heavy test, so fewer of the others
    total = sum(durations.values())
    assert max(shard_times) <= total / 2 + 0.5  # within one light test of a perfect split
    result = run_inner(suite, "--shard=1/2")
    result.stdout.fnmatch_lines(["shard 1/2: * tests, estimated *s of 21.5s (24 with recorded*"])


def test_store_durations_writes_a_file_the_next_run_reads(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_slow="import time\n\ndef test_slow():\n    time.sleep(0.3)\n")
    result = run_inner(suite, "--store-durations")
    result.assert_outcomes(passed=25)
    durations = json.loads((suite.path / ".test_durations").read_text())
    assert set(durations) == set(collected_ids(suite))
    assert durations["test_slow.py::test_slow"] >= 0.3
    assert durations["test_alpha.py::test_one"] < 0.3

    # A sharded run with --store-durations keeps the records of the other shard's tests.
    first_shard = collected_ids(suite, "--shard=1/2")
    result = run_inner(suite, "--shard=1/2", "--store-durations")
    result.assert_outcomes(passed=len(first_shard), deselected=25 - len(first_shard))
    assert set(json.loads((suite.path / ".test_durations").read_text())) == set(durations)


def test_shard_applies_after_keyword_selection(suite: pytest.Pytester) -> None:
    subset = collected_ids(suite, "-k", "alpha or beta")
    parts = [collected_ids(suite, "-k", "alpha or beta", f"--shard={i}/2") for i in (1, 2)]
    assert sorted(parts[0] + parts[1]) == sorted(subset)
    assert abs(len(parts[0]) - len(parts[1])) <= 1


@pytest.mark.parametrize("bad", ["3/2", "0/2", "x", "1/0", "2", "1/2/3", "-1/2"])
def test_bad_shard_values_are_one_line_usage_errors(suite: pytest.Pytester, bad: str) -> None:
    result = run_inner(suite, f"--shard={bad}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.strip()]
    assert errors == [
        f"ERROR: bad shard {bad!r}: use I/N with 1 <= I <= N, e.g. --shard 1/2 (or STACK_SHARD=1/2)"
    ]


def test_a_broken_durations_file_is_a_usage_error(suite: pytest.Pytester) -> None:
    (suite.path / ".test_durations").write_text("{not json")
    result = run_inner(suite, "--shard=1/2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "durations file" in result.errlines[0] and "--store-durations" in result.errlines[0]


# --- the planner alone -----------------------------------------------------------------------


def test_parse_shard_accepts_spaces_and_rejects_nonsense() -> None:
    assert parse_shard(" 2/3 ") == Shard(2, 3)
    with pytest.raises(ValueError, match="bad shard 'a/b'"):
        parse_shard("a/b")


def test_stable_hash_is_fixed_across_processes() -> None:
    # A literal: Python's hash() would change with PYTHONHASHSEED, this must not.
    assert stable_hash("tests/test_x.py::test_y") == 0x35B5040DA1C63F53


def test_plan_is_independent_of_collection_order() -> None:
    ids = [f"t.py::test_{i}" for i in range(40)]
    durations = {nodeid: float(i % 7) for i, nodeid in enumerate(ids)}
    forward = plan_shards(ids, durations, Shard(1, 3))
    backward = plan_shards(list(reversed(ids)), durations, Shard(1, 3))
    assert set(forward.selected) == set(backward.selected)
    assert forward.estimated_seconds == backward.estimated_seconds


def test_unknown_tests_weigh_the_mean_of_the_known() -> None:
    ids = ["a::x", "a::y", "a::new1", "a::new2"]
    plan = plan_shards(ids, {"a::x": 4.0, "a::y": 2.0}, Shard(1, 2))
    assert sum(plan.estimated_seconds) == pytest.approx(4.0 + 2.0 + 3.0 + 3.0)
    assert plan.with_durations == 2
