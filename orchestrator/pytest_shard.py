"""`--shard I/N`: run a deterministic, duration-balanced part of the collected tests.

A pytest plugin of its own (entry point `ci_stack_shard`), so CI legs can split one suite:
`pytest --shard 1/2` on one runner and `--shard 2/2` on another run every collected test
exactly once between them. `STACK_SHARD=I/N` is the fallback when the option is not given.

Balance: each test weighs what an earlier run measured (`.test_durations`, a JSON object
`{nodeid: seconds}` as pytest-split writes it; `--store-durations` writes it here too); a test
without a record weighs the mean of the known ones (1 s when none is known). Tests are taken
heaviest first, ties in the order of a stable hash of their node id, and each goes to the
lightest shard so far (longest-processing-time first). Every shard computes the same
assignment from the same collection, so shards are disjoint and their union is the whole
collection, provided they collect the same tests (same checkout, same `-k`/`-m`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.contract import ENV_SHARD as SHARD_ENV

DURATIONS_FILE = ".test_durations"
_UNKNOWN_WEIGHT_S = 1.0  # when no test has a recorded duration at all


@dataclass(frozen=True)
class Shard:
    """Shard `index` (1-based) of `count`."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True)
class ShardPlan:
    """What one shard runs, and the estimate it was balanced on."""

    shard: Shard
    selected: tuple[str, ...]
    estimated_seconds: tuple[float, ...]  # per shard, in shard order
    with_durations: int  # how many of the collected tests had a recorded duration


def parse_shard(raw: str) -> Shard:
    """`"I/N"` with 1 <= I <= N; ValueError with a one-line reason otherwise."""
    index_text, slash, count_text = raw.strip().partition("/")
    try:
        index, count = int(index_text), int(count_text)
    except ValueError:
        index = count = 0
    if not slash or count < 1 or not 1 <= index <= count:
        raise ValueError(
            f"bad shard {raw!r}: use I/N with 1 <= I <= N, e.g. --shard 1/2 (or {SHARD_ENV}=1/2)"
        )
    return Shard(index, count)


def stable_hash(nodeid: str) -> int:
    """The same number for the same node id in every process (unlike `hash()`)."""
    return int.from_bytes(hashlib.sha256(nodeid.encode("utf-8")).digest()[:8], "big")


def plan_shards(nodeids: list[str], durations: dict[str, float], shard: Shard) -> ShardPlan:
    """Assign every node id to one shard, balancing the summed weights; return `shard`'s part."""
    known = [durations[n] for n in nodeids if n in durations]
    default = sum(known) / len(known) if known else _UNKNOWN_WEIGHT_S
    weights = {n: durations.get(n, default) for n in nodeids}
    totals = [0.0] * shard.count
    owner: dict[str, int] = {}
    for nodeid in sorted(nodeids, key=lambda n: (-weights[n], stable_hash(n), n)):
        lightest = min(range(shard.count), key=lambda i: (totals[i], i))
        owner[nodeid] = lightest
        totals[lightest] += weights[nodeid]
    selected = tuple(n for n in nodeids if owner[n] == shard.index - 1)
    return ShardPlan(shard, selected, tuple(round(t, 3) for t in totals), len(known))


def read_durations(path: Path) -> dict[str, float]:
    """`{nodeid: seconds}` from a durations file (also pytest-split's older list form)."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise pytest.UsageError(
            f"durations file {path} is not JSON ({exc}); delete it or rerun with --store-durations"
        ) from exc
    pairs = data.items() if isinstance(data, dict) else data
    return {str(nodeid): float(seconds) for nodeid, seconds in pairs}


# --- the plugin's hooks ----------------------------------------------------------------------

_shard_key = pytest.StashKey[Shard | None]()
_plan_key = pytest.StashKey[ShardPlan]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ci-stack shards")
    group.addoption(
        "--shard",
        default=None,
        metavar="I/N",
        help=f"run shard I of N (1-based) of the collected tests; env fallback {SHARD_ENV}",
    )
    group.addoption(
        "--store-durations",
        action="store_true",
        default=False,
        help="record each test's duration into the durations file (for balancing shards)",
    )
    group.addoption(
        "--durations-path",
        default=None,
        metavar="PATH",
        help=f"the durations file (default: <rootdir>/{DURATIONS_FILE})",
    )


def pytest_configure(config: pytest.Config) -> None:
    raw = config.getoption("shard") or os.environ.get(SHARD_ENV) or ""
    try:
        config.stash[_shard_key] = parse_shard(raw) if raw.strip() else None
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    # xdist workers report to the controller, which alone records.
    if config.getoption("store_durations") and not hasattr(config, "workerinput"):
        recorder = DurationRecorder(_durations_path(config))
        config.pluginmanager.register(recorder, "ci_stack_shard_durations")


def _durations_path(config: pytest.Config) -> Path:
    given = config.getoption("durations_path")
    return Path(given) if given else config.rootpath / DURATIONS_FILE


@pytest.hookimpl(trylast=True)  # after -k/-m have deselected theirs
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shard = config.stash.get(_shard_key, None)
    if shard is None:
        return
    durations = read_durations(_durations_path(config))
    plan = plan_shards([item.nodeid for item in items], durations, shard)
    config.stash[_plan_key] = plan
    chosen = set(plan.selected)
    deselected = [item for item in items if item.nodeid not in chosen]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
    items[:] = [item for item in items if item.nodeid in chosen]


def pytest_report_collectionfinish(config: pytest.Config) -> str | None:
    plan = config.stash.get(_plan_key, None)
    if plan is None:
        return None
    estimate = plan.estimated_seconds[plan.shard.index - 1]
    return (
        f"shard {plan.shard}: {len(plan.selected)} tests, estimated {estimate:.1f}s of "
        f"{sum(plan.estimated_seconds):.1f}s ({plan.with_durations} with recorded durations)"
    )


class DurationRecorder:
    """Sums each test's setup+call+teardown time; writes the durations file at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.measured: dict[str, float] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.measured[report.nodeid] = self.measured.get(report.nodeid, 0.0) + report.duration

    def pytest_sessionfinish(self) -> None:
        if not self.measured:
            return
        known = read_durations(self.path)
        known.update({nodeid: round(s, 4) for nodeid, s in self.measured.items()})
        self.path.write_text(json.dumps(dict(sorted(known.items())), indent=2) + "\n", "utf-8")
