"""pytest plugin (entry point `pytest11`): stack fixtures and per-test ids.

Inert unless used: fixtures start or reuse a stack only when a test asks for them. What a
test leaves behind (results, failure markers, junit.xml) is `orchestrator.pytest_evidence`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from orchestrator.util import test_id_for

TEST_ID_HEADER = "X-Test-Id"
_REPORT_KEY = pytest.StashKey[dict[str, pytest.TestReport]]()


@dataclass(frozen=True)
class StackHandle:
    """The stack the tests run against (reused from the environment or started here)."""

    backend_url: str
    database_url: str | None
    run_id: str | None
    artifacts_dir: Path | None
    provider: str | None


class TestSession(requests.Session):
    """A requests session bound to the backend URL that sends the test's id on every call."""

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
    value = os.environ.get("STACK_ARTIFACTS_DIR")
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


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def stack() -> Iterator[StackHandle]:
    """The stack named by STACK_BACKEND_URL, else one started for this session."""
    url = os.environ.get("STACK_BACKEND_URL")
    if url:
        yield StackHandle(
            backend_url=url.rstrip("/"),
            database_url=os.environ.get("STACK_DATABASE_URL"),
            run_id=os.environ.get("STACK_RUN_ID"),
            artifacts_dir=artifacts_dir(),
            provider=os.environ.get("STACK_PROVIDER"),
        )
        return
    from orchestrator.session import start_session_stack

    with start_session_stack() as started:
        yield started


@pytest.fixture(scope="session")
def backend_url(stack: StackHandle) -> str:
    return stack.backend_url


@pytest.fixture
def test_id(request: pytest.FixtureRequest) -> str:
    """This test's id, sent as X-Test-Id so its backend and worker log lines can be found."""
    return test_id_for(request.node.nodeid)


@pytest.fixture
def api(backend_url: str, test_id: str) -> Iterator[TestSession]:
    """HTTP session against the stack; relative paths are joined to the backend URL."""
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
def reset_db(api: TestSession) -> Callable[..., dict[str, Any]]:
    """`reset_db(seed=False)`: the testing reset; returns its JSON body."""

    def reset(seed: bool = False) -> dict[str, Any]:
        response = api.post(f"/api/testing/reset?seed={'true' if seed else 'false'}")
        response.raise_for_status()
        return dict(response.json())

    return reset
