"""The artifacts folder: where each file lives, and writing files through the redactor."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from orchestrator.artifacts.zip_redaction import redact_zip
from orchestrator.redaction import Redactor
from orchestrator.util import test_slug

# Fixed names inside a run's folder (the report and `merge` find files by these).
FAILED_TEST_FILE = "test.json"  # tests/<slug>/test.json, written by the evidence plugin
RESULTS_FILE = "results.jsonl"  # one JSON line per test (passed too), by the evidence plugin
RUN_FILE = "run.json"  # the RunInfo of the finished run
SUMMARY_FILE = "summary.md"
REPORT_FILE = "index.html"
JUNIT_FILE = "junit.xml"
STACK_FILE = "stack.json"
CONSOLE_FILE = "console.jsonl"  # tests/<slug>/: the page's structured console events
TRANSCRIPT_GLOB = "transcript-*.jsonl"  # tests/<slug>/: SSE transcripts
SCREENSHOT_GLOB = "test-*.png"  # tests/<slug>/: Playwright's screenshots
TRACE_GLOB = "trace*.zip"  # tests/<slug>/: Playwright's traces


class Artifacts:
    """Owns `<root>/`: stack.json, junit.xml, results.jsonl, summary.md, index.html, logs/,
    tests/<slug>/. Every text it writes passes through the redactor first."""

    def __init__(self, root: Path, redactor: Redactor) -> None:
        self.root = root
        self.redactor = redactor

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def tests_dir(self) -> Path:
        return self.root / "tests"

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
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.tests_dir.mkdir(parents=True, exist_ok=True)
        return self

    def write_text(self, relative: str | Path, text: str) -> Path:
        """Write `text` redacted, atomically (a reader never sees half a file)."""
        path = self.root / relative
        write_atomically(path, self.redactor(text))
        return path

    def write_json(self, relative: str | Path, data: Any) -> Path:
        return self.write_text(relative, json.dumps(data, indent=2, default=str) + "\n")

    def append_line(self, relative: str | Path, line: str) -> Path:
        """Append one redacted line (JSON lines files written as things happen)."""
        path = self.root / relative
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
                except (zipfile.BadZipFile, OSError):
                    pass  # a damaged zip stays as it is (it is no readable evidence either)
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            redacted = self.redactor(text)
            if redacted != text:
                write_atomically(path, redacted)
                changed.append(path)
        return changed


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
