"""Retries (`retries`, `--retries`, STACK_RETRIES; 2 when CI is set): a failed test runs again.

Our own `pytest_runtest_protocol` rather than pytest-rerunfailures: that plugin writes one
`<testcase>` per attempt into junit.xml with no failure in it (the error of the failed attempt
is lost, and readers count the test twice), and it tears a retried test's higher-scoped
fixtures down with the real next item, so a failure in the last test of a session stops and
restarts the whole stack before the retry. Here an attempt whose setup or call failed is torn
down to its function scope only (module and session fixtures, the stack, stay up), its evidence
moved into `tests/<slug>/attempt-N/` with its own `test.json`, and the test runs again; only
the final attempt's reports are logged (one testcase, one results line), carrying the earlier
attempts (`ci_stack_attempts`: each one's error, phase, test id and folder). A test that
passes at its first attempt runs exactly as without retries. A teardown error is not retried;
a failure in a module- or session-scoped fixture repeats (pytest keeps it) and is reported.

Each attempt N > 1 sends the test id `<id>-attempt-N` (X-Test-Id), so the backend and worker
records of the attempts never mix: each folder gets the slices of its own attempt.

A flaky test (failed, then passed) passes the run unless `fail-on-flaky` is set (a quarantined
one never fails it).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import pytest
from _pytest.runner import call_and_report  # the phases of pytest's runtestprotocol

from orchestrator.config import ConfigError, OrchestratorConfig, find_pyproject
from orchestrator.pytest_plugin import ATTEMPT_KEY
from orchestrator.pytest_quarantine import is_quarantined
from orchestrator.util import attempt_test_id

ATTEMPT_ATTR = "ci_stack_attempt"  # on the logged reports: which attempt they are (1-based)
ATTEMPTS_ATTR = "ci_stack_attempts"  # on the logged reports: the earlier failed attempts
_SETTINGS_KEY = pytest.StashKey["RetrySettings"]()
_PLUGIN_NAME = "ci-stack-flaky-count"


@dataclass(frozen=True)
class RetrySettings:
    retries: int
    fail_on_flaky: bool


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ci-stack")
    group.addoption(
        "--retries",
        default=None,
        help="times a failed test is run again (env STACK_RETRIES; default 0, 2 when CI is set)",
    )
    group.addoption(
        "--fail-on-flaky",
        action="store_const",
        const=True,
        default=None,
        help="a test that failed, then passed on retry fails the run (env STACK_FAIL_ON_FLAKY)",
    )


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    config.stash[_SETTINGS_KEY] = _load_settings(config)
    config.pluginmanager.register(FlakyCount(config), _PLUGIN_NAME)


def pytest_unconfigure(config: pytest.Config) -> None:
    plugin = config.pluginmanager.get_plugin(_PLUGIN_NAME)
    if plugin is not None:
        config.pluginmanager.unregister(plugin)


def _load_settings(config: pytest.Config) -> RetrySettings:
    """--retries > STACK_RETRIES > [tool.ci-stack] retries > 2 when CI is set > 0."""
    flags = {
        "retries": config.getoption("--retries"),
        "fail_on_flaky": config.getoption("--fail-on-flaky"),
    }
    pyproject = find_pyproject() or find_pyproject(config.rootpath)
    try:
        settings = OrchestratorConfig.load(flags, pyproject=pyproject)
    except ConfigError as exc:
        raise pytest.UsageError(f"ci-stack: {exc}") from None
    return RetrySettings(settings.retries, settings.fail_on_flaky)


def retry_settings(config: pytest.Config) -> RetrySettings:
    return config.stash.get(_SETTINGS_KEY, None) or RetrySettings(0, False)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    retries = retry_settings(item.config).retries
    if retries <= 0:
        return None  # pytest's own protocol
    ihook = item.ihook
    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    earlier: list[dict[str, Any]] = []
    attempt = 1
    while True:
        item.stash[ATTEMPT_KEY] = attempt
        reports = _setup_and_call(item)
        failed = next((r for r in reports if r.failed), None)
        if failed is None or attempt > retries:
            break  # the final attempt: logged below, torn down for the real next item
        # Torn down to its function scope only: pytest keeps every node that the "next item"
        # needs, so naming the test's parent as next keeps module and session fixtures up.
        parent: Any = item.parent
        teardown = call_and_report(item, "teardown", log=False, nextitem=parent)
        _forget_request(item)
        earlier.append(_keep_attempt(item, attempt, failed, [*reports, teardown]))
        attempt += 1
    for report in reports:
        _stamp(report, attempt, earlier)
        ihook.pytest_runtest_logreport(report=report)
    if item.session.shouldfail or item.session.shouldstop:
        nextitem = None
    teardown = call_and_report(item, "teardown", log=False, nextitem=nextitem)
    _stamp(teardown, attempt, earlier)
    ihook.pytest_runtest_logreport(report=teardown)
    _forget_request(item)
    ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def _setup_and_call(item: pytest.Item) -> list[pytest.TestReport]:
    """runtestprotocol's setup and call phases, not logged yet."""
    if hasattr(item, "_request") and not item._request:
        item._initrequest()  # type: ignore[attr-defined]  # a re-run item, as pytest does
    reports = [call_and_report(item, "setup", log=False)]
    if reports[0].passed and not item.config.getoption("setuponly", False):
        reports.append(call_and_report(item, "call", log=False))
    return reports


def _forget_request(item: pytest.Item) -> None:
    if hasattr(item, "_request"):
        item._request = False
        item.funcargs = None  # type: ignore[attr-defined]


def _stamp(report: pytest.TestReport, attempt: int, earlier: list[dict[str, Any]]) -> None:
    setattr(report, ATTEMPT_ATTR, attempt)
    setattr(report, ATTEMPTS_ATTR, list(earlier))


class RetryHooks:
    """The hook the retries plugin calls; the evidence plugin implements it."""

    @pytest.hookspec(firstresult=True)
    def pytest_ci_stack_attempt_failed(
        self, item: pytest.Item, attempt: int, report: pytest.TestReport, duration: float
    ) -> dict[str, Any] | None:
        """Attempt `attempt` of `item` failed (`report`: its failing phase) and the test runs
        again: keep what it left (run in the process that ran it, before the next attempt
        writes); return the attempt's record (results.jsonl's `attempts` entry)."""


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(RetryHooks)


def _keep_attempt(
    item: pytest.Item, attempt: int, failed: pytest.TestReport, reports: list[pytest.TestReport]
) -> dict[str, Any]:
    duration = sum(r.duration for r in reports)
    kept = item.ihook.pytest_ci_stack_attempt_failed(
        item=item, attempt=attempt, report=failed, duration=duration
    )
    record: dict[str, Any] = kept or {"outcome": "failed", "message": failed.longreprtext}
    record.update(attempt=attempt, test_id=attempt_test_id(item.nodeid, attempt))
    return record


def attempts_of(report: pytest.TestReport) -> list[dict[str, Any]]:
    """The earlier failed attempts a logged report carries (none without retries)."""
    found = getattr(report, ATTEMPTS_ATTR, None)
    return list(found) if isinstance(found, list) else []


def attempt_of(report: pytest.TestReport) -> int:
    found = getattr(report, ATTEMPT_ATTR, 1)
    return found if isinstance(found, int) else 1


def is_flaky(report: pytest.TestReport) -> bool:
    return report.when == "call" and report.passed and bool(attempts_of(report))


def pytest_report_teststatus(
    report: pytest.TestReport, config: pytest.Config
) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
    if is_flaky(report) and not hasattr(report, "wasxfail"):
        return "flaky", "f", ("FLAKY", {"yellow": True})
    return None


@dataclass(eq=False)  # hashable by identity: it is registered as a plugin
class FlakyCount:
    """The session's flaky tests (the xdist controller sees every worker's reports) and,
    with fail-on-flaky, the exit status they turn red."""

    config: pytest.Config
    flaky: list[str] = field(default_factory=list)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if is_flaky(report) and not is_quarantined(self.config, report.nodeid):
            self.flaky.append(report.nodeid)

    @pytest.hookimpl(tryfirst=True)  # before the evidence plugin reads the exit status
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(self.config, "workerinput") or not self.flaky:
            return  # an xdist worker: the controller decides
        if not retry_settings(self.config).fail_on_flaky:
            return
        print(
            f"\nci-stack: {len(self.flaky)} flaky test(s) and fail-on-flaky is set: the run fails",
            file=sys.stderr,
        )
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
