"""Quarantine in pytest (`--quarantine`, STACK_QUARANTINE, `[tool.ci-stack] quarantine`):
a quarantined test runs as any other (retries, evidence, results line) but its failure does
not count: pytest's `testsfailed` leaves it out (and so does xdist's controller, which counts
failures for `--maxfail` itself), so the exit status and `--maxfail` are as if it had not
failed, and so are `ci-stack run`'s verdict and run.json. The terminal says which
quarantined tests failed; a pattern that matches no test of the session is a one-line warning.

Which tests are quarantined is a function of the node id (`orchestrator.quarantine`), the same
in every xdist worker and in the controller.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from orchestrator.config import ConfigError, OrchestratorConfig, find_pyproject
from orchestrator.quarantine import Quarantine, load_quarantine, looks_like_a_file

_QUARANTINE_KEY = pytest.StashKey[Quarantine]()
_PLUGIN_NAME = "ci-stack-quarantine-session"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("ci-stack").addoption(
        "--quarantine",
        default=None,
        metavar="PATTERNS",
        help="tests that run but never fail the run: node ids or fnmatch patterns "
        "(comma-separated), or a file of them (env STACK_QUARANTINE)",
    )


def pytest_configure(config: pytest.Config) -> None:
    flags = {"quarantine": config.getoption("--quarantine", None)}
    pyproject = find_pyproject() or find_pyproject(config.rootpath)
    try:
        settings = OrchestratorConfig.load(flags, pyproject=pyproject)
        quarantine = load_quarantine(settings.quarantine, settings.root or config.rootpath)
    except ConfigError as exc:
        raise pytest.UsageError(f"ci-stack: {exc}") from None
    config.stash[_QUARANTINE_KEY] = quarantine
    if quarantine:
        config.pluginmanager.register(QuarantineSession(config, quarantine), _PLUGIN_NAME)


def pytest_unconfigure(config: pytest.Config) -> None:
    plugin = config.pluginmanager.get_plugin(_PLUGIN_NAME)
    if plugin is not None:
        config.pluginmanager.unregister(plugin)


def quarantine_of(config: pytest.Config) -> Quarantine:
    return config.stash.get(_QUARANTINE_KEY, None) or Quarantine()


def is_quarantined(config: pytest.Config, nodeid: str) -> bool:
    return quarantine_of(config).matches(nodeid)


def _counts_as_failed(report: pytest.TestReport) -> bool:
    """What pytest's Session counts in `testsfailed` (its pytest_runtest_logreport)."""
    return report.failed and not hasattr(report, "wasxfail")


@dataclass(eq=False)  # hashable by identity: it is registered as a plugin
class QuarantineSession:
    config: pytest.Config
    quarantine: Quarantine
    session: pytest.Session | None = None
    seen: set[str] = field(default_factory=set)
    failed: list[str] = field(default_factory=list)  # quarantined tests that failed

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.session = session

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Iterator[None]:
        """Around pytest's Session, which counts every failure in `testsfailed` (and stops
        at `--maxfail`), and xdist's controller, which counts them again for its own
        `--maxfail`: one count taken back from each beforehand, so a quarantined failure
        leaves the counts, the exit status and `--maxfail` as they were."""
        self.seen.add(report.nodeid)
        if _counts_as_failed(report) and self.quarantine.matches(report.nodeid):
            if report.nodeid not in self.failed:
                self.failed.append(report.nodeid)
            if self.session is not None:
                self.session.testsfailed -= 1  # the Session adds it back
            dsession = self.config.pluginmanager.get_plugin("dsession")
            if dsession is not None and isinstance(getattr(dsession, "countfailures", None), int):
                dsession.countfailures -= 1  # xdist's controller adds it back right after
        return (yield)

    def pytest_report_teststatus(
        self, report: pytest.TestReport
    ) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
        if _counts_as_failed(report) and self.quarantine.matches(report.nodeid):
            return "failed", "q", ("FAILED (quarantined)", {"yellow": True})
        return None

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if hasattr(self.config, "workerinput"):
            return
        if self.failed:
            terminalreporter.write_line(
                f"ci-stack: {len(self.failed)} quarantined test(s) failed; they do not fail "
                "the run: " + ", ".join(self.failed),
                yellow=True,
            )
        if self.seen:
            for pattern in self.quarantine.unmatched(self.seen):
                missing = (
                    f", and there is no file {pattern!r} (a quarantine file is found from the "
                    "project root)"
                    if looks_like_a_file(pattern)
                    else ""
                )
                terminalreporter.write_line(
                    f"ci-stack: warning: quarantine pattern {pattern!r} matches no test of "
                    f"this session{missing}",
                    yellow=True,
                )
