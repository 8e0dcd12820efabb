"""pytest plugin `ci_stack_evidence` (entry point `pytest11`): what each test leaves behind.

For every test (passed too) one line in `results.jsonl`: node id, outcome, duration,
file:line, phase, message and the failure with its code frame; for each failed test
`tests/<slug>/test.json` (that line, with when the test started, failed and ended: its
timeline's own entries) and the transcripts of the SSE clients it opened; and
`pytest-session.json`, the session's duration as pytest's summary line prints it. Every file is
written through the run's Redactor (the password in STACK_DATABASE_URL) the moment it is
written; the zips in a test's folder (Playwright's traces) are redacted once the test is
torn down; junit.xml is written into a temp dir and moved in redacted when the session ends.

Where it writes (nothing at all when none applies):
- under `orchestrator run` (CI_STACK_RUN_ID set in the environment pytest was started with):
  the run's STACK_ARTIFACTS_DIR; the run finishes the folder (slices, summary.md, index.html);
- against a warm stack (STACK_BACKEND_URL set by hand after `orchestrator up`): its own
  folder, `--stack-artifacts DIR` (default `artifacts/pytest/`), replaced at the start and
  finished here at the end with slices cut from the up run's logs (STACK_LOGS_DIR), its
  failures labelled from the run history and its tests recorded in it (`--history`);
- with the plugin's self-started stack ("own"): the folder of the Run in
  `config.stash[RUN_KEY]` once the `stack` fixture has started it; that Run is finished by
  the stack plugin after this one has moved junit.xml in.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import zipfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import pytest

from orchestrator import pytest_quarantine, pytest_repeat, pytest_retries
from orchestrator.artifacts import layout
from orchestrator.artifacts.finish import finish_run
from orchestrator.artifacts.junit import add_attempts, junit_name, mark_quarantined
from orchestrator.artifacts.layout import LOGS_DIR, LOSSES_ENV, Artifacts, WriteLosses
from orchestrator.artifacts.run_history import is_shard_leg
from orchestrator.artifacts.run_info import RunInfo, Verdict
from orchestrator.artifacts.zip_redaction import redact_zip
from orchestrator.config import ConfigError, OrchestratorConfig, find_pyproject
from orchestrator.contract import (
    ENV_ARTIFACTS_DIR,
    ENV_BACKEND_URL,
    ENV_DATABASE_URL,
    ENV_LOGS_DIR,
    ENV_PROVIDER,
    ENV_RUN_ID,
    RUN_ENV,
)
from orchestrator.errors import PrerequisiteMissing
from orchestrator.folder_lock import FolderLock
from orchestrator.pytest_plugin import own_run, test_failed
from orchestrator.pytest_retries import attempt_of, attempts_of
from orchestrator.redaction import Redactor
from orchestrator.spec import new_run_id
from orchestrator.sse_client import SSEClient, record_clients
from orchestrator.util import attempt_test_id, test_id_for

DEFAULT_WARM_FOLDER = Path("artifacts/pytest")
LONGREPR_LIMIT = 64_000  # characters of one failure kept (head and tail)
_SESSION_KEY = pytest.StashKey["EvidenceSession"]()
_SETUP_AT_KEY = pytest.StashKey[str]()  # when the current attempt's setup began (UTC)
_PLUGIN_NAME = "ci-stack-evidence-session"

Mode = Literal["run", "warm", "own"]


def database_password(database_url: str | None) -> str | None:
    """The password inside a DSN such as postgresql://user:secret@host/db."""
    if not database_url:
        return None
    password = urlsplit(database_url).password
    return unquote(password) if password else None


def redactor_from_env() -> Redactor:
    password = database_password(os.environ.get(ENV_DATABASE_URL))
    return Redactor([password] if password else [])


@dataclass(eq=False)  # hashable by identity: it is registered as a plugin
class EvidenceSession:
    """Where this session's evidence goes and what it has recorded so far."""

    mode: Mode
    config: pytest.Config
    fixed_folder: Path | None = None  # run and warm modes (own: the Run's folder)
    worker: bool = False  # a pytest-xdist worker
    stack_logs: Path | None = None  # warm mode: the up run's logs/
    stack_folder: Path | None = None  # warm mode: the up run's folder (its stack.json)
    staging: Path | None = None  # temp dir that junit.xml is written into
    folder_lock: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)  # warm
    started_at: str = field(default_factory=lambda: utc_now())  # noqa: PLW0108 (defined below)
    _phases: dict[str, dict[str, Any]] = field(default_factory=dict)
    _failed: dict[str, dict[str, Any]] = field(default_factory=dict)  # nodeid -> test.json
    _clock: float | None = None  # perf_counter at session start, as pytest's own summary
    retried: dict[str, dict[str, Any]] = field(default_factory=dict)  # junit name -> entry
    quarantined: dict[str, str] = field(default_factory=dict)  # junit name -> outcome
    _artifacts: Artifacts | None = None
    history: Path | None = None  # warm mode: the history folder (None: off)

    @property
    def rootdir(self) -> Path:
        return self.config.rootpath

    def artifacts(self) -> Artifacts | None:
        """The folder's writer, one for the session: it records what could not be written
        (run mode: also in the run's journal, for the run that finishes it). Own mode: the
        self-started Run's own writer (its redactor, its record of losses), once it runs."""
        if self.mode == "own":
            run = own_run(self.config)
            return run.artifacts if run is not None else None
        folder = self.fixed_folder
        if folder is None:
            return None
        if self._artifacts is None:
            journal = os.environ.get(LOSSES_ENV) if self.mode == "run" else None
            losses = WriteLosses(folder, Path(journal) if journal else None)
            self._artifacts = Artifacts(folder, redactor_from_env(), losses)
        return self._artifacts

    # -- hooks (the session is registered as a plugin) ---------------------------------------

    @pytest.hookimpl(trylast=True)  # as pytest's terminal reporter starts its clock
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self._clock = time.perf_counter()

    @pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_sessionfinish")
    def after_the_summary_line(self) -> Generator[None]:
        # Outermost wrapper: this runs after pytest printed "in N.NNs", so the time written
        # is the one printed. Run mode only: the run reads it after pytest exits.
        try:
            return (yield)
        finally:
            if self.mode == "run":
                self.write_session_time()

    def write_session_time(self) -> None:
        """The session's duration so far, as pytest's summary line counts it."""
        artifacts = self.artifacts()
        if self.worker or self._clock is None or artifacts is None:
            return
        seconds = round(time.perf_counter() - self._clock, 3)
        artifacts.write_json(layout.SESSION_FILE, {"seconds": seconds})

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # One folder (run, warm): the xdist controller records every worker's tests. Own:
        # each xdist worker self-starts a stack with its own folder and records its tests.
        if not self.worker or self.mode == "own":
            self.record(report, self.rootdir)
            if report.when == "teardown":
                self.redact_zips(report.nodeid)

    def redact_zips(self, nodeid: str) -> None:
        """The test's zips (Playwright saved its traces as its fixtures were torn down),
        redacted now rather than only when the run finishes."""
        artifacts = self.artifacts()
        if artifacts is None:
            return
        for path in sorted(artifacts.test_dir(nodeid).rglob("*.zip")):
            try:
                redact_zip(path, artifacts.redactor)
            except zipfile.BadZipFile:
                continue  # not a zip after all; finishing the run passes it by too

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.worker:
            return
        self.write_session_time()  # warm and own runs are finished before pytest's summary
        artifacts = self.artifacts()
        _move_junit(self, artifacts)
        if artifacts is None:
            return
        if self.mode == "warm":
            run = _warm_run_info(session.config, self, int(session.exitstatus))
            finished = finish_run(
                artifacts,
                run,
                logs_dir=self.stack_logs,
                history=self.history,
                record_history=not is_shard_leg(run.command),
            )
            lost = artifacts.losses
            state = f"  EVIDENCE INCOMPLETE ({lost.summary()})" if lost else ""
            print(
                f"\nevidence  {artifacts.root}/{state}  (report: {finished.report})",
                file=sys.stderr,
            )
        elif artifacts.losses:  # the run finishing the folder says it too
            print(f"\nci-stack: evidence incomplete: {artifacts.losses.summary()}", file=sys.stderr)

    # -- one report per phase --------------------------------------------------------------

    def record(self, report: pytest.TestReport, rootdir: Path) -> None:
        state = self._phases.setdefault(report.nodeid, {"duration": 0.0})
        state["duration"] += report.duration
        state.setdefault("started_at", iso_from_epoch(report.start))
        outcome = _outcome(report)
        final: str | None = None
        if report.when == "setup" and outcome != "passed":
            final = "error" if outcome == "failed" else outcome
        elif report.when == "call":
            final = outcome
        elif report.when == "teardown":
            self._phases.pop(report.nodeid, None)
            if outcome != "failed":
                self._finished(report)
                return
            final = "error"
        if final is None:
            return
        attempts = attempts_of(report)
        if final == "passed" and attempts:
            final = "flaky"
        artifacts = self.artifacts()
        if artifacts is None:
            return
        entry = _entry(report, final, state, rootdir)
        if pytest_quarantine.is_quarantined(self.config, report.nodeid):
            entry["quarantined"] = True  # the outcome stays the test's own
            self.quarantined[junit_name(report.nodeid)] = final
        if attempts:  # a retried test: its final attempt, and every earlier one's error
            entry["test_id"] = attempt_test_id(report.nodeid, attempt_of(report))
            entry["attempt"] = attempt_of(report)
            entry["attempts"] = attempts
            self.retried[junit_name(report.nodeid)] = entry
        artifacts.append_line(layout.RESULTS_FILE, json.dumps(entry, ensure_ascii=False))
        if final in ("failed", "error"):
            if report.when != "teardown":  # its end is told by the teardown to come
                self._failed[report.nodeid] = entry
            marker = artifacts.test_dir(report.nodeid) / layout.FAILED_TEST_FILE
            artifacts.write_json(marker.relative_to(artifacts.root), entry)

    def _finished(self, teardown: pytest.TestReport) -> None:
        """A failed test's teardown is done: its test.json learns when it ended."""
        entry = self._failed.pop(teardown.nodeid, None)
        artifacts = self.artifacts()
        if entry is None or artifacts is None:
            return
        entry["finished_at"] = iso_from_epoch(teardown.stop)
        marker = artifacts.test_dir(teardown.nodeid) / layout.FAILED_TEST_FILE
        artifacts.write_json(marker.relative_to(artifacts.root), entry)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_from_epoch(seconds: float) -> str:
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _outcome(report: pytest.TestReport) -> str:
    xfail = hasattr(report, "wasxfail")
    if report.skipped:
        return "xfailed" if xfail else "skipped"
    if report.passed:
        return "xpassed" if xfail and report.when == "call" else "passed"
    return "failed"


def _entry(
    report: pytest.TestReport, outcome: str, state: dict[str, Any], rootdir: Path
) -> dict[str, Any]:
    path, line, _domain = report.location
    message, crash = _reason(report, rootdir)
    longrepr = report.longreprtext if outcome not in ("passed", "xpassed") else ""
    if len(longrepr) > LONGREPR_LIMIT:
        half = LONGREPR_LIMIT // 2
        longrepr = f"{longrepr[:half]}\n… ({len(longrepr) - LONGREPR_LIMIT} characters cut) …\n"
        longrepr += report.longreprtext[-half:]
    entry = {
        "nodeid": report.nodeid,
        "test_id": test_id_for(report.nodeid),
        "outcome": outcome,
        "phase": report.when,
        "duration": round(state["duration"], 4),
        "location": f"{path}:{line + 1}" if line is not None else path,
        "crash": crash,
        "message": message,
        "longrepr": longrepr,
        "started_at": state.get("started_at"),
    }
    if outcome in ("failed", "error"):  # the moment the failing phase raised
        entry["failed_at"] = iso_from_epoch(report.stop)
        if report.when == "teardown":
            entry["finished_at"] = entry["failed_at"]
    return entry


def _reason(report: pytest.TestReport, rootdir: Path) -> tuple[str, str | None]:
    """The failure's one message (the exception line) and where it was raised."""
    longrepr = report.longrepr
    if longrepr is None or report.passed:
        return "", None
    if isinstance(longrepr, tuple):  # a skip: (path, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: "), f"{longrepr[0]}:{longrepr[1]}"
    crash = getattr(longrepr, "reprcrash", None)
    if crash is None:
        return str(longrepr).strip().splitlines()[-1] if str(longrepr).strip() else "", None
    where = Path(crash.path)
    if where.is_relative_to(rootdir):  # else a library's file: keep the absolute path
        where = where.relative_to(rootdir)
    return str(crash.message), f"{where.as_posix()}:{crash.lineno}"


# -- hooks ------------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Each attempt's start, for the record of a failed attempt (the retries plugin does not
    log an earlier attempt's reports)."""
    item.stash[_SETUP_AT_KEY] = utc_now()


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    for plugin, name in (
        (pytest_retries, "ci-stack-retries"),
        (pytest_quarantine, "ci-stack-quarantine"),
        (pytest_repeat, "ci-stack-repeat"),
    ):
        if not pluginmanager.is_registered(plugin):
            pluginmanager.register(plugin, name)
    group = parser.getgroup("ci-stack")
    group.addoption(
        "--stack-artifacts",
        default=None,
        type=Path,
        help="evidence folder when testing a warm stack (default: artifacts/pytest)",
    )
    group.addoption(
        "--history",
        default=None,
        help="folder of the run history, or off (env STACK_HISTORY; default: "
        ".ci-stack/history under the project root)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    session = _session_for(config)
    config.stash[_SESSION_KEY] = session
    worker = session.worker = hasattr(config, "workerinput")
    config.pluginmanager.register(session, _PLUGIN_NAME)
    if session.mode == "warm" and session.fixed_folder is not None and not worker:
        session.history = history_folder(config)  # a bad setting: before the folder is taken
        _take_folder(session, session.fixed_folder)
    if not worker and not getattr(config.option, "xmlpath", None):
        # pytest writes junit.xml unredacted: into a temp dir, moved in at the end.
        session.staging = Path(tempfile.mkdtemp(prefix=f"ci-stack-{_run_label()}-junit-"))
        config.option.xmlpath = str(session.staging / layout.JUNIT_FILE)


def _session_for(config: pytest.Config) -> EvidenceSession:
    """The mode, from the environment this pytest was started with (by `orchestrator run`,
    or a shell that exported what `orchestrator up` printed): read once, at configure."""
    env = os.environ
    folder = env.get(ENV_ARTIFACTS_DIR)
    if env.get(RUN_ENV) and folder:
        return EvidenceSession("run", config, fixed_folder=Path(folder))
    if env.get(ENV_BACKEND_URL):
        chosen = config.getoption("--stack-artifacts") or config.rootpath / DEFAULT_WARM_FOLDER
        stack_folder = Path(folder) if folder else None
        logs = env.get(ENV_LOGS_DIR)
        stack_logs = Path(logs) if logs else stack_folder / LOGS_DIR if stack_folder else None
        return EvidenceSession(
            "warm", config, Path(chosen), stack_logs=stack_logs, stack_folder=stack_folder
        )
    if folder:
        return EvidenceSession("run", config, fixed_folder=Path(folder))
    return EvidenceSession("own", config)


def history_folder(config: pytest.Config) -> Path | None:
    """The `history` setting for this session: --history > STACK_HISTORY > pyproject."""
    pyproject = find_pyproject() or find_pyproject(config.rootpath)
    try:
        settings = OrchestratorConfig.load(
            {"history": config.getoption("--history")}, pyproject=pyproject
        )
    except ConfigError as exc:
        raise pytest.UsageError(f"ci-stack: {exc}") from None
    return settings.history_folder


def _run_label() -> str:
    return os.environ.get("STACK_RUN_ID") or f"pytest-{os.getpid()}"


def _take_folder(session: EvidenceSession, folder: Path) -> None:
    """One session, one folder: held for the session, an earlier session's evidence removed
    (never mixed in); a folder that is not an earlier session's, or a live one's, refused."""
    names = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    if layout.STACK_FILE in names or LOGS_DIR in names:
        raise pytest.UsageError(
            f"--stack-artifacts {folder} is a stack's run folder (it has stack.json or logs/); "
            "name another folder for this session's evidence (default: artifacts/pytest)."
        )
    hold = contextlib.ExitStack()
    try:
        hold.enter_context(FolderLock.take(folder, f"pytest-{os.getpid()}", "--stack-artifacts"))
    except PrerequisiteMissing as exc:
        raise pytest.UsageError(str(exc)) from None
    session.folder_lock = hold


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(_SESSION_KEY, None)
    if session is None:
        return
    if session.staging is not None:  # the session ended early (e.g. a usage error)
        shutil.rmtree(session.staging, ignore_errors=True)
    session.folder_lock.close()  # the folder is free for the next session
    if config.pluginmanager.is_registered(session):
        config.pluginmanager.unregister(session)


def _move_junit(evidence: EvidenceSession, artifacts: Artifacts | None) -> None:
    if evidence.staging is None:
        return
    staged = evidence.staging / layout.JUNIT_FILE
    if artifacts is not None and staged.is_file():
        text = staged.read_text(encoding="utf-8")
        if evidence.retried:
            text = add_attempts(text, evidence.retried)
        if evidence.quarantined:
            text = mark_quarantined(text, evidence.quarantined)
        artifacts.write_text(layout.JUNIT_FILE, text)
    shutil.rmtree(evidence.staging, ignore_errors=True)
    evidence.staging = None


def _warm_run_info(config: pytest.Config, evidence: EvidenceSession, status: int) -> RunInfo:
    stack: dict[str, Any] = {}
    if evidence.stack_folder is not None:
        try:
            stack = json.loads((evidence.stack_folder / layout.STACK_FILE).read_text())
        except (OSError, ValueError):
            stack = {}
    verdict: Verdict = "passed" if status == 0 else "failed" if status == 1 else "error"
    # A stack started by hand has no stack.json: this session is its run, at its URL.
    url = os.environ.get(ENV_BACKEND_URL, "").rstrip("/")
    return RunInfo(
        run_id=os.environ.get(ENV_RUN_ID) or str(stack.get("run_id") or "") or new_run_id(),
        provider=os.environ.get(ENV_PROVIDER) or str(stack.get("provider") or f"stack at {url}"),
        app=str(stack.get("app") or "app"),  # the profile's name
        verdict=verdict,
        command=["pytest", *config.invocation_params.args],
        command_status=int(status),
        timings={str(k): float(v) for k, v in (stack.get("timings") or {}).items()},
        stack=stack,
        started_at=evidence.started_at,
        finished_at=utc_now(),
    )


# -- a failed attempt of a retried test -----------------------------------------------------


def pytest_ci_stack_attempt_failed(
    item: pytest.Item, attempt: int, report: pytest.TestReport, duration: float
) -> dict[str, Any]:
    """Move what the attempt left in tests/<slug>/ into tests/<slug>/attempt-N/, with its
    test.json; returns its record (the retries plugin adds the attempt and its test id)."""
    outcome = "failed" if report.when == "call" else "error"
    state = {"duration": duration, "started_at": item.stash.get(_SETUP_AT_KEY, None)}
    entry = _entry(report, outcome, state, item.config.rootpath)
    entry.update(attempt=attempt, test_id=attempt_test_id(item.nodeid, attempt))
    entry["finished_at"] = utc_now()  # called once the attempt is torn down
    artifacts = evidence_artifacts(item.config)
    if artifacts is None:
        return entry
    folder = artifacts.test_dir(item.nodeid)
    target = folder / layout.ATTEMPT_DIR.format(attempt)
    entry["folder"] = target.relative_to(artifacts.root).as_posix()
    with artifacts.recording(target):
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(folder.iterdir()):
            if not (path.is_dir() and path.match(layout.ATTEMPT_GLOB)):
                shutil.move(path, target / path.name)
    artifacts.write_json(target.relative_to(artifacts.root) / layout.FAILED_TEST_FILE, entry)
    return entry


# -- SSE transcripts ----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _stack_sse_transcripts(request: pytest.FixtureRequest) -> Iterator[None]:
    """Record the SSE clients a test opens; if it fails, keep their transcripts."""
    with record_clients() as clients:
        yield
    if clients and test_failed(request):
        write_transcripts(request.config, request.node.nodeid, clients)


def evidence_artifacts(config: pytest.Config) -> Artifacts | None:
    """This session's evidence folder (writing through the redactor), or None."""
    session = config.stash.get(_SESSION_KEY, None)
    return session.artifacts() if session is not None else None


def write_test_file(config: pytest.Config, nodeid: str, name: str, text: str) -> Path | None:
    """Write `tests/<slug>/<name>` of a test, redacted; None when there is no folder."""
    artifacts = evidence_artifacts(config)
    if artifacts is None:
        return None
    relative = artifacts.test_dir(nodeid).relative_to(artifacts.root) / name
    return artifacts.write_text(relative, text)


def write_transcripts(config: pytest.Config, nodeid: str, clients: list[SSEClient]) -> list[Path]:
    """transcript-N.jsonl per client (first line names the URL), redacted."""
    written = []
    for n, client in enumerate(clients, start=1):
        lines = [json.dumps({"url": client.url, "strict": client.strict})]
        lines += [json.dumps(entry, default=str) for entry in client.transcript]
        path = write_test_file(config, nodeid, f"transcript-{n}.jsonl", "\n".join(lines) + "\n")
        if path is not None:
            written.append(path)
    return written
