"""The `ci_stack` pytest plugin, tested with pytester.

pytester runs each inner session in-process (`runpytest`), in a temp dir; the plugin is
loaded there by its `pytest11` entry point, like in any project that installs this package,
so no `-p ci_stack` is needed (`run_inner` only turns pytest-playwright off). The "stack"
is a tiny HTTP server in this process that records what it receives: with
STACK_BACKEND_URL set, the plugin reuses it instead of starting one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from orchestrator import util  # not its test_* names: pytest would collect them

pytest_plugins = ["pytester"]


def run_inner(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # pytest-playwright wraps every test in a soft-assertion scope, which cannot nest: an
    # in-process inner session runs without it (our plugin does not need it).
    return pytester.runpytest("-p", "no:cacheprovider", "-p", "no:playwright", *args)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    test_id: str | None


class RecordingBackend:
    """Answers every request with {"ok": true} and remembers method, path and X-Test-Id."""

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                backend.requests.append(
                    Seen(self.command, self.path, self.headers.get("X-Test-Id"))
                )
                body = json.dumps({"ok": True, "path": self.path}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep the test output clean

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> RecordingBackend:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def test_id_for_path(self, path: str) -> list[str | None]:
        return [r.test_id for r in self.requests if r.path == path]


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingBackend]:
    with RecordingBackend() as server:
        monkeypatch.setenv("STACK_BACKEND_URL", server.url)
        monkeypatch.setenv("STACK_APP", "backend.stack_profile:profile")  # as a run exports it
        monkeypatch.delenv("STACK_ARTIFACTS_DIR", raising=False)
        yield server


TWO_TESTS = """
def test_first(api):
    assert api.get("/first").status_code == 200

def test_second(api):
    assert api.get("/second").json() == {"ok": True, "path": "/second"}
"""


def test_each_test_sends_its_own_stable_id_as_x_test_id(
    pytester: pytest.Pytester, backend: RecordingBackend
) -> None:
    pytester.makepyfile(test_ids=TWO_TESTS)

    run_inner(pytester).assert_outcomes(passed=2)
    run_inner(pytester).assert_outcomes(passed=2)

    first = backend.test_id_for_path("/first")
    second = backend.test_id_for_path("/second")
    assert first == [util.test_id_for("test_ids.py::test_first")] * 2  # the same on each run
    assert second == [util.test_id_for("test_ids.py::test_second")] * 2
    assert first[0] != second[0]


def test_the_test_id_fixture_is_what_the_api_sends(
    pytester: pytest.Pytester, backend: RecordingBackend
) -> None:
    pytester.makepyfile(
        test_fixture="""
        import pytest

        @pytest.mark.parametrize("n", [1, 2])
        def test_param(api, test_id, n):
            api.get(f"/p{n}?id={test_id}")
        """
    )

    run_inner(pytester).assert_outcomes(passed=2)

    assert len(backend.requests) == 2
    for seen in backend.requests:
        assert seen.path.endswith(f"?id={seen.test_id}")
    assert len({seen.test_id for seen in backend.requests}) == 2  # params are separate tests


def test_reset_db_posts_to_the_testing_reset(
    pytester: pytest.Pytester, backend: RecordingBackend
) -> None:
    pytester.makepyfile(
        test_reset="""
        def test_reset(reset_db):
            assert reset_db()["ok"] is True
            assert reset_db(seed=True)["path"] == "/api/testing/reset?seed=true"
        """
    )

    run_inner(pytester).assert_outcomes(passed=1)

    test_id = util.test_id_for("test_reset.py::test_reset")
    assert backend.requests == [
        Seen("POST", "/api/testing/reset?seed=false", test_id),
        Seen("POST", "/api/testing/reset?seed=true", test_id),
    ]


MODULE_PROFILE = """
from orchestrator.profile import AppProfile


class Mine(AppProfile):
    name = "mine"

    def reset(self, base_url, seed, headers):
        return {"profile": self.name, "seed": seed}


profile = Mine()
"""


@pytest.mark.parametrize("handed_on", [True, False])
def test_reset_db_finds_a_module_profile_from_the_project_root(
    pytester: pytest.Pytester,
    backend: RecordingBackend,
    monkeypatch: pytest.MonkeyPatch,
    handed_on: bool,
) -> None:
    """`app = "mine_profile:profile"` in pyproject.toml, the file beside it, the tests in a
    folder of their own (so the root is not on sys.path): the profile loads inside pytest,
    named by STACK_APP (as `orchestrator run` hands it on) or by the pyproject alone."""
    reference = "mine_profile:profile"
    if handed_on:
        monkeypatch.setenv("STACK_APP", reference)
    else:
        monkeypatch.delenv("STACK_APP", raising=False)
    pytester.makefile(".toml", pyproject=f'[tool.ci-stack]\napp = "{reference}"\n')
    (pytester.path / "mine_profile.py").write_text(MODULE_PROFILE)
    tests = pytester.mkdir("tests")
    (tests / "test_reset.py").write_text(
        "def test_reset(reset_db):\n"
        "    assert reset_db(seed=True) == {'profile': 'mine', 'seed': True}\n"
    )

    run_inner(pytester, "tests").assert_outcomes(passed=1)


def test_the_stack_fixture_describes_the_reused_stack(
    pytester: pytest.Pytester, backend: RecordingBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STACK_RUN_ID", "run-7")
    monkeypatch.setenv("STACK_PROVIDER", "local")
    pytester.makepyfile(
        test_stack=f"""
        def test_stack(stack, backend_url):
            assert backend_url == {backend.url!r}
            assert (stack.run_id, stack.provider) == ("run-7", "local")
        """
    )

    run_inner(pytester).assert_outcomes(passed=1)


# Results, failure markers and junit.xml: test_evidence_plugin.py (orchestrator.pytest_evidence).
