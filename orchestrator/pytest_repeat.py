"""`--repeat-each N` (STACK_REPEAT_EACH, setting `repeat-each`): every selected test runs N
times, to chase a flaky test locally (as Playwright's `--repeat-each` and pytest-repeat do).

Each repeat is a test of its own, parametrized last: `test_y[repeat-2of5]`, or
`test_y[a-repeat-2of5]` for a parametrized test, so each repeat has its own evidence folder,
its own test id (X-Test-Id) and its own results line; the report and summary group them by the
test's node id with a pass rate (`orchestrator.artifacts.repeats`). With retries, each repeat
is retried on its own; a repeat that passed only on retry is flaky, not passed. Under xdist
the repeats are spread over the workers like any other tests. Only Python test functions are
repeated (not unittest test cases or non-Python items).
"""

from __future__ import annotations

import pytest

from orchestrator.config import ConfigError, OrchestratorConfig, find_pyproject
from orchestrator.util import repeat_id

REPEAT_ARG = "ci_stack_repeat"  # the parameter each repeat gets (K, 1-based)
_COUNT_KEY = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("ci-stack").addoption(
        "--repeat-each",
        default=None,
        metavar="N",
        help="run every selected test N times, each repeat its own test (env STACK_REPEAT_EACH)",
    )


def pytest_configure(config: pytest.Config) -> None:
    flags = {"repeat_each": config.getoption("--repeat-each", None)}
    pyproject = find_pyproject() or find_pyproject(config.rootpath)
    try:
        config.stash[_COUNT_KEY] = OrchestratorConfig.load(flags, pyproject=pyproject).repeat_each
    except ConfigError as exc:
        raise pytest.UsageError(f"ci-stack: {exc}") from None


def repeat_each(config: pytest.Config) -> int:
    return config.stash.get(_COUNT_KEY, 1)


@pytest.hookimpl(trylast=True)  # after the test's own parametrizations: the repeat id is last
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    count = repeat_each(metafunc.config)
    if count <= 1 or REPEAT_ARG in metafunc.fixturenames:
        return
    metafunc.fixturenames.append(REPEAT_ARG)
    metafunc.parametrize(
        REPEAT_ARG, range(1, count + 1), ids=[repeat_id(k, count) for k in range(1, count + 1)]
    )
