"""The artifacts folder: where each file lives, and writing files through the redactor.

Writing evidence never fails a run: a file that cannot be written (a full disk, a quota) is
recorded in the folder's `WriteLosses` — the one record of what is missing and why, which
run.json, summary.md, index.html and the CLI's last line report — and the run goes on.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from orchestrator.artifacts.zip_redaction import redact_zip
from orchestrator.redaction import Redactor
from orchestrator.util import test_slug

# Fixed names inside a run's folder (the report and `merge` find files by these): the only
# place they are spelled; other modules use these names or an `Artifacts` property.
LOGS_DIR = "logs"  # the harvested logs of every service (and images.log)
TESTS_DIR = "tests"  # tests/<slug>/: the evidence of each failed test
IMAGES_LOG = "images.log"  # logs/: the whole output of image pulls and builds
FAILED_TEST_FILE = "test.json"  # tests/<slug>/test.json, written by the evidence plugin
RESULTS_FILE = "results.jsonl"  # one JSON line per test (passed too), by the evidence plugin
RUN_FILE = "run.json"  # the RunInfo of the finished run
SESSION_FILE = "pytest-session.json"  # pytest's session duration, by the evidence plugin
SUMMARY_FILE = "summary.md"
REPORT_FILE = "index.html"
JUNIT_FILE = "junit.xml"
STACK_FILE = "stack.json"
LEG_FILE = "ci-leg.json"  # a CI leg's record: its name, the run id and the run attempt
MERGE_FILE = "merge.json"  # in a merged folder: legs, attempts, verdict, reasons
ATTEMPT_DIR = "attempt-{}"  # tests/<slug>/attempt-N/: a failed attempt of a retried test
ATTEMPT_GLOB = "attempt-*"
CONSOLE_FILE = "console.jsonl"  # tests/<slug>/: the page's structured console events
TRANSCRIPT_GLOB = "transcript-*.jsonl"  # tests/<slug>/: SSE transcripts
SCREENSHOT_GLOB = "test-*.png"  # tests/<slug>/: Playwright's screenshots
TRACE_GLOB = "trace*.zip"  # tests/<slug>/: Playwright's traces
RESERVE_FILE = ".ci-stack-reserve"  # room kept for the finishing files while a run goes on
RESERVE_BYTES = 256 * 1024  # a small index.html, run.json and summary.md fit in it
LOSSES_ENV = "CI_STACK_WRITE_LOSSES"  # a run's journal of losses, for its command's writers


class WriteLosses:
    """What could not be written into a folder, and why: path -> (first error, count).

    Shared by every writer of one run in this process (thread-safe); with a `journal` (a
    file outside the folder, named in LOSSES_ENV) also by the run's command: each loss is
    appended there and `merge_journal` reads them back."""

    def __init__(self, root: Path, journal: Path | None = None) -> None:
        self.root = root
        self.journal = journal
        self._lock = threading.Lock()
        self._lost: dict[str, tuple[str, int]] = {}

    def record(self, path: Path | str, error: BaseException | str, count: int = 1) -> None:
        name = self._name(path)
        reason = error if isinstance(error, str) else error_reason(error)
        with self._lock:
            first, seen = self._lost.get(name, (reason, 0))
            self._lost[name] = (first, seen + count)
        if self.journal is not None:
            line = json.dumps({"path": name, "error": reason, "count": count})
            try:
                with self.journal.open("a", encoding="utf-8") as handle:
                    handle.write(line + "\n")
            except OSError:
                pass  # its own disk is full too: this process's record still has it

    def merge_journal(self) -> None:
        """Add the losses the run's command recorded in the journal."""
        if self.journal is None:
            return
        try:
            lines = self.journal.read_text(encoding="utf-8").splitlines()
        except OSError:
            return
        for line in lines:
            try:
                entry = json.loads(line)
                self.record(str(entry["path"]), str(entry["error"]), int(entry["count"]))
            except (ValueError, KeyError, TypeError):
                continue

    def describe(self) -> dict[str, str]:
        """path (relative to the folder) -> why it is missing or short."""
        with self._lock:
            lost = dict(self._lost)
        return {
            name: f"{reason} ({count} writes lost)" if count > 1 else reason
            for name, (reason, count) in sorted(lost.items())
        }

    def summary(self) -> str:
        """One line: what is missing and why."""
        lost = self.describe()
        reasons = sorted({reason.split(" (")[0] for reason in lost.values()})
        names = ", ".join(list(lost)[:5]) + (f" and {len(lost) - 5} more" if len(lost) > 5 else "")
        return f"{'; '.join(reasons)}: {names} not (fully) written"

    def __bool__(self) -> bool:
        with self._lock:
            return bool(self._lost)

    def _name(self, path: Path | str) -> str:
        path = Path(path)
        if path.is_absolute() and path.is_relative_to(self.root.absolute()):
            path = path.relative_to(self.root.absolute())
        elif not path.is_absolute() and path.is_relative_to(self.root):
            path = path.relative_to(self.root)
        return path.as_posix()


def error_reason(error: BaseException) -> str:
    """An OSError's text without its number ("No space left on device"), else type: text."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return f"{type(error).__name__}: {error}"


class Artifacts:
    """Owns `<root>/`: stack.json, junit.xml, results.jsonl, summary.md, index.html, logs/,
    tests/<slug>/. Every text it writes passes through the redactor first."""

    def __init__(self, root: Path, redactor: Redactor, losses: WriteLosses | None = None) -> None:
        self.root = root
        self.redactor = redactor
        self.losses = losses if losses is not None else WriteLosses(root)

    @property
    def logs_dir(self) -> Path:
        return self.root / LOGS_DIR

    @property
    def images_log(self) -> Path:
        return self.logs_dir / IMAGES_LOG

    @property
    def tests_dir(self) -> Path:
        return self.root / TESTS_DIR

    @property
    def stack_path(self) -> Path:
        return self.root / STACK_FILE

    @property
    def junit_path(self) -> Path:
        return self.root / JUNIT_FILE

    @property
    def results_path(self) -> Path:
        return self.root / RESULTS_FILE

    def test_dir(self, nodeid: str) -> Path:
        """tests/<slug>/ of one test (the folder pytest-playwright uses too)."""
        return self.tests_dir / test_slug(nodeid)

    def create(self) -> Artifacts:
        """The folders, and the room the finishing files will need (see `release_reserve`)."""
        with self.recording(self.root):
            self.logs_dir.mkdir(parents=True, exist_ok=True)
            self.tests_dir.mkdir(parents=True, exist_ok=True)
        reserve = self.root / RESERVE_FILE
        try:
            with reserve.open("wb") as handle:
                os.posix_fallocate(handle.fileno(), 0, RESERVE_BYTES)
        except OSError:  # already full: there is nothing to keep
            reserve.unlink(missing_ok=True)
        return self

    def release_reserve(self) -> None:
        """Give the room kept since `create` to the finishing files (index.html first)."""
        with contextlib.suppress(OSError):
            (self.root / RESERVE_FILE).unlink(missing_ok=True)

    @contextlib.contextmanager
    def recording(self, what: Path | str) -> Iterator[None]:
        """Run a write; if it fails (OSError), record `what` as lost instead of raising."""
        try:
            yield
        except OSError as exc:
            self.losses.record(what, exc)

    def write_text(self, relative: str | Path, text: str) -> Path:
        """Write `text` redacted, atomically (a reader never sees half a file); a failed
        write leaves the earlier file (or none) and is recorded in `losses`."""
        path = self.root / relative
        with self.recording(path):
            write_atomically(path, self.redactor(text))
        return path

    def write_json(self, relative: str | Path, data: Any) -> Path:
        return self.write_text(relative, json.dumps(data, indent=2, default=str) + "\n")

    def append_line(self, relative: str | Path, line: str) -> Path:
        """Append one redacted line (JSON lines files written as things happen)."""
        path = self.root / relative
        with self.recording(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as handle:
                handle.write(self.redactor(line.rstrip("\n")) + "\n")
        return path

    def redact_files(self, skip: Path | None = None) -> list[Path]:
        """Pass every file (except those under `skip`) through the redactor, also those
        written by others: text files, and the members of zips (Playwright's traces); other
        binary files (screenshots, videos) are left alone."""
        changed = []
        skipped = skip.resolve() if skip is not None else None
        for path in sorted(p for p in self.root.rglob("*") if p.is_file()):
            if skipped is not None and path.resolve().is_relative_to(skipped):
                continue
            if zipfile.is_zipfile(path):
                try:
                    if redact_zip(path, self.redactor):
                        changed.append(path)
                except zipfile.BadZipFile:
                    pass  # a damaged zip stays as it is (it is no readable evidence either)
                except OSError as exc:  # could not be rewritten: it must not stay unredacted
                    self._drop_unredacted(path, exc)
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            redacted = self.redactor(text)
            if redacted != text:
                try:
                    write_atomically(path, redacted)
                except OSError as exc:
                    self._drop_unredacted(path, exc)
                    continue
                changed.append(path)
        return changed

    def _drop_unredacted(self, path: Path, error: OSError) -> None:
        """A file of this run holding a secret that could not be rewritten (a full disk) is
        removed, never left as it was; the loss is recorded."""
        path.unlink(missing_ok=True)
        self.losses.record(path, f"{error_reason(error)}; removed: it could not be redacted")


def _umask() -> int:
    """The process's umask, read without changing it (os.umask would, for every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def write_atomically(path: Path, text: str) -> None:
    """Write to a temp file beside `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temp, 0o666 & ~_umask())  # as an ordinary file would be (mkstemp: 0600)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
