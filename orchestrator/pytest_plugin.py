"""pytest plugin (entry point `pytest11`): stack fixtures and per-test ids.

Inert unless used: fixtures start or reuse a stack only when a test asks for them. What a
test leaves behind (results, failure markers, junit.xml) is `orchestrator.pytest_evidence`.

A stack this session starts itself is one `session.Run`, kept in `config.stash[RUN_KEY]`:
the evidence plugin writes into its folder, and it is finished once pytest has written its
own reports. Nothing of it goes through `os.environ` (that is for child processes: a stack
started by `orchestrator run`/`up` is named to this session by its STACK_* variables).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from orchestrator.util import attempt_test_id

if TYPE_CHECKING:
    from orchestrator.config import OrchestratorConfig
    from orchestrator.profile import AppProfile
    from orchestrator.session import Run

__all__ = [
    "RUN_KEY",
    "TEST_ID_HEADER",
    "StackHandle",
    "TestSession",
    "artifacts_dir",
    "own_run",
    "test_failed",
]

_REPORT_KEY = pytest.StashKey[dict[str, pytest.TestReport]]()
# Which attempt of a test is running (1-based; set by the retries plugin, 1 without it).
ATTEMPT_KEY = pytest.StashKey[int]()
# The Run of the stack this session started itself (both plugins read it; set by `stack`).
RUN_KEY = pytest.StashKey["Run"]()


@dataclass(frozen=True)
class StackHandle:
    """The stack the tests run against (reused from the environment or started here)."""

    backend_url: str
    database_url: str | None
    run_id: str | None
    artifacts_dir: Path | None
    provider: str | None
    app: str | None = None  # the app profile (module:attr), for reset_db
    # What a command run against the stack is told (STACK_* and the profile's own)
    environment: Mapping[str, str] = field(default_factory=dict)


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
    """The folder of the stack named by this process's environment (STACK_ARTIFACTS_DIR)."""
    value = os.environ.get(ENV_ARTIFACTS_DIR)
    return Path(value) if value else None


def own_run(config: pytest.Config) -> Run | None:
    """The Run of the stack this session started itself, once it runs (else None)."""
    return config.stash.get(RUN_KEY, None)


# -- hooks ------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report: pytest.TestReport = yield
    reports = item.stash.setdefault(_REPORT_KEY, {})
    if report.when == "setup":
        reports.clear()  # a retried test's earlier attempt is not this one
    reports[report.when] = report
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


def stack_config(config: pytest.Config) -> OrchestratorConfig:
    """The settings of a stack this session starts: [tool.ci-stack] of the pyproject.toml
    found from the working directory, else from pytest's rootdir."""
    from orchestrator.config import OrchestratorConfig, find_pyproject

    pyproject = find_pyproject() or find_pyproject(config.rootpath)
    flags = {"history": config.getoption("--history", default=None)}  # pytest_evidence's
    return OrchestratorConfig.load(flags, pyproject=pyproject)


def load_profile_or_exit(reference: str | None, config: pytest.Config) -> Any:
    """The app profile `reference` names; one that does not load (a syntax error, an
    exception at import) ends the session as a usage error: one line, exit status 4. An
    xdist worker cannot end the session (xdist reports that as an INTERNALERROR): there the
    tests that need the stack fail with that line, without a traceback."""
    from orchestrator.profile import ProfileError, load_profile

    try:
        return load_profile(reference, root=stack_config(config).root or config.rootpath)
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
            environment={k: v for k, v in os.environ.items() if k.startswith("STACK_")},
        )
        return
    from orchestrator.github import mask_commands
    from orchestrator.session import open_stack

    config = stack_config(request.config)
    worker = xdist_worker(request.config)
    if worker:  # plain `pytest -n N`: a stack per xdist worker, each with its own folder
        config = config.with_values(artifacts=config.artifacts / worker)
    app = load_profile_or_exit(config.app, request.config)
    with open_stack(config, app=app, finish=False) as run:
        _print_uncaptured(request.config, mask_commands(run.artifacts.redactor.needles))
        request.config.stash[RUN_KEY] = run  # the evidence plugin writes into its folder
        yield StackHandle(
            backend_url=run.backend_url,
            database_url=run.stack.database_url,
            run_id=run.run_id,
            artifacts_dir=run.artifacts.root,
            provider=run.choice.name,
            app=run.app_reference,
            environment=run.environment(),
        )


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


@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish(session: pytest.Session) -> Iterator[None]:
    """Finish the run of a stack this session started once every other `sessionfinish`
    has run (fixtures torn down: the stack stopped; junit.xml written and moved in)."""
    try:
        return (yield)
    finally:
        run = own_run(session.config)
        if run is not None:
            command = ["pytest", *session.config.invocation_params.args]
            run.finish(command, int(session.exitstatus))  # fail-on-flaky may have changed it


@pytest.fixture(scope="session")
def backend_url(stack: StackHandle) -> str:
    return stack.backend_url


@pytest.fixture
def test_id(request: pytest.FixtureRequest) -> str:
    """This test's id, sent as X-Test-Id so its backend and worker log lines can be found
    (a retried test's attempt N > 1: `<id>-attempt-N`, so the attempts' lines never mix)."""
    return attempt_test_id(request.node.nodeid, request.node.stash.get(ATTEMPT_KEY, 1))


@pytest.fixture
def api(backend_url: str, test_id: str) -> Iterator[TestSession]:
    """HTTP session against the stack; relative paths are joined to the web service's URL."""
    with TestSession(backend_url, test_id) as session:
        yield session


@pytest.fixture
def sse_client(backend_url: str, test_id: str) -> Iterator[Callable[..., Any]]:
    """Factory `(path, headers=..., send_test_id=True, **SSEClient options) -> SSEClient`,
    opened, sending X-Test-Id (unless `send_test_id=False` or `headers` has its own); every
    client is closed afterwards, and a failed test keeps their transcripts (evidence plugin)."""
    from orchestrator.sse_client import SSEClient

    clients: list[SSEClient] = []

    def open_client(path: str, *, send_test_id: bool = True, **kwargs: Any) -> SSEClient:
        sent = {TEST_ID_HEADER: test_id} if send_test_id else {}
        headers = {**sent, **(kwargs.pop("headers", None) or {})}
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
    run = own_run(request.config)
    profile: AppProfile
    if run is not None:
        profile = run.app  # the very profile that started the stack
    else:
        reference = stack.app or stack_config(request.config).app
        profile = load_profile_or_exit(reference, request.config)

    def reset(seed: bool = False) -> dict[str, Any]:
        return profile.reset(stack.backend_url, seed, {TEST_ID_HEADER: test_id})

    return reset
