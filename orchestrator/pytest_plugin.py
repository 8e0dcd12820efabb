"""pytest plugin (entry point `pytest11`): stack fixtures and per-test ids.

Inert unless used: fixtures start or reuse a stack only when a test asks for them. What a
test leaves behind (results, failure markers, junit.xml) is `orchestrator.pytest_evidence`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from orchestrator.contract import (
    ENV_APP,
    ENV_ARTIFACTS_DIR,
    ENV_BACKEND_URL,
    ENV_DATABASE_URL,
    ENV_PROVIDER,
    ENV_RUN_ID,
    TEST_ID_HEADER,
)
from orchestrator.util import test_id_for

__all__ = ["TEST_ID_HEADER", "StackHandle", "TestSession", "artifacts_dir", "test_failed"]

_REPORT_KEY = pytest.StashKey[dict[str, pytest.TestReport]]()
_OWN_RUN_KEY = pytest.StashKey[Any]()  # the session.Run of a stack this session started


@dataclass(frozen=True)
class StackHandle:
    """The stack the tests run against (reused from the environment or started here)."""

    backend_url: str
    database_url: str | None
    run_id: str | None
    artifacts_dir: Path | None
    provider: str | None
    app: str | None = None  # the app profile (module:attr), for reset_db


class TestSession(requests.Session):
    """A requests session bound to the web service's URL that sends the test's id on every call."""

    __test__ = False

    def __init__(self, base_url: str, test_id: str) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.headers[TEST_ID_HEADER] = test_id

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        if isinstance(url, str) and url.startswith("/"):
            url = self.base_url + url
        kwargs.setdefault("timeout", 30)
        return super().request(method, url, *args, **kwargs)


def artifacts_dir() -> Path | None:
    value = os.environ.get(ENV_ARTIFACTS_DIR)
    return Path(value) if value else None


# -- hooks ------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report: pytest.TestReport = yield
    item.stash.setdefault(_REPORT_KEY, {})[report.when] = report
    return report


def test_failed(request: pytest.FixtureRequest) -> bool:
    """True when the requesting test's setup or call phase failed (for fixtures' teardown)."""
    reports = request.node.stash.get(_REPORT_KEY, {})
    return any(r.failed for r in reports.values())


def xdist_worker(config: pytest.Config) -> str | None:
    """This process's xdist worker id, or None (asked of pytest's config, not of the
    environment: a pytest started by a test inherits its worker's PYTEST_XDIST_WORKER)."""
    workerinput = getattr(config, "workerinput", None)
    return str(workerinput["workerid"]) if workerinput else None


def load_profile_or_exit(reference: str | None, config: pytest.Config) -> Any:
    """The app profile `reference` names; one that does not load (a syntax error, an
    exception at import) ends the session as a usage error: one line, exit status 4. An
    xdist worker cannot end the session (xdist reports that as an INTERNALERROR): there the
    tests that need the stack fail with that line, without a traceback."""
    from orchestrator.profile import ProfileError, load_profile

    try:
        return load_profile(reference)
    except ProfileError as exc:
        problem = f"ci-stack: {exc}"  # raised below, outside this block: no chained traceback
    if xdist_worker(config):
        pytest.fail(problem, pytrace=False)
    pytest.exit(problem, returncode=pytest.ExitCode.USAGE_ERROR)


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest) -> Iterator[StackHandle]:
    """The stack named by STACK_BACKEND_URL, else one started for this session (its
    artifacts folder is finished once pytest has written its own reports)."""
    url = os.environ.get(ENV_BACKEND_URL)
    if url:
        yield StackHandle(
            backend_url=url.rstrip("/"),
            database_url=os.environ.get(ENV_DATABASE_URL),
            run_id=os.environ.get(ENV_RUN_ID),
            artifacts_dir=artifacts_dir(),
            provider=os.environ.get(ENV_PROVIDER),
            app=os.environ.get(ENV_APP),
        )
        return
    from orchestrator.config import OrchestratorConfig
    from orchestrator.github import mask_commands
    from orchestrator.session import open_stack

    config = OrchestratorConfig.load()
    worker = xdist_worker(request.config)
    if worker:  # plain `pytest -n N`: a stack per xdist worker, each with its own folder
        config = config.with_values(artifacts=config.artifacts / worker)
    app = load_profile_or_exit(config.app, request.config)
    with open_stack(config, app=app, finish=False) as run:
        _print_uncaptured(request.config, mask_commands(run.artifacts.redactor.needles))
        request.config.stash[_OWN_RUN_KEY] = run
        environment = run.command_environment()
        saved = {key: os.environ.get(key) for key in environment}
        os.environ.update(environment)  # evidence hooks and helpers find the stack
        try:
            yield StackHandle(
                backend_url=run.backend_url,
                database_url=run.stack.database_url,
                run_id=run.run_id,
                artifacts_dir=run.artifacts.root,
                provider=run.choice.name,
                app=run.config.app,
            )
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _print_uncaptured(config: pytest.Config, lines: list[str]) -> None:
    """Lines on the terminal itself, each at the start of a line (workflow commands such as
    GitHub's masks must reach the job log now, not in a test's captured output)."""
    if not lines:
        return
    capture = config.pluginmanager.getplugin("capturemanager")
    terminal = config.pluginmanager.getplugin("terminalreporter")
    with capture.global_and_fixture_disabled() if capture else nullcontext():
        for line in lines:
            if terminal is not None:
                terminal.write_line(line)
            else:
                print(line, flush=True)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Finish the run of a stack this session started, after pytest's own reports."""
    run = config.stash.get(_OWN_RUN_KEY, None)
    if run is not None:
        run.command = ["pytest", *config.invocation_params.args]
        run.command_status = int(getattr(config, "_ci_stack_exitstatus", 0) or 0)
        run.finish()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config._ci_stack_exitstatus = exitstatus  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def backend_url(stack: StackHandle) -> str:
    return stack.backend_url


@pytest.fixture
def test_id(request: pytest.FixtureRequest) -> str:
    """This test's id, sent as X-Test-Id so the services' log lines for it can be found."""
    return test_id_for(request.node.nodeid)


@pytest.fixture
def api(backend_url: str, test_id: str) -> Iterator[TestSession]:
    """HTTP session against the stack; relative paths are joined to the web service's URL."""
    with TestSession(backend_url, test_id) as session:
        yield session


@pytest.fixture
def sse_client(backend_url: str, test_id: str) -> Iterator[Callable[..., Any]]:
    """Factory `(path, **kwargs) -> SSEClient` sending X-Test-Id; clients closed afterwards."""
    from orchestrator.sse_client import SSEClient

    clients: list[SSEClient] = []

    def open_client(path: str, **kwargs: Any) -> SSEClient:
        headers = {TEST_ID_HEADER: test_id, **kwargs.pop("headers", {})}
        client = SSEClient(backend_url.rstrip("/") + path, headers=headers, **kwargs)
        clients.append(client)
        return client.open()

    yield open_client
    for client in clients:
        client.close()


@pytest.fixture
def reset_db(
    request: pytest.FixtureRequest, stack: StackHandle, test_id: str
) -> Callable[..., dict[str, Any]]:
    """`reset_db(seed=False)`: the app profile's reset; returns what it reports."""
    from orchestrator.config import OrchestratorConfig

    profile = load_profile_or_exit(stack.app or OrchestratorConfig.load().app, request.config)

    def reset(seed: bool = False) -> dict[str, Any]:
        return profile.reset(stack.backend_url, seed, {TEST_ID_HEADER: test_id})

    return reset
