"""Progress of pulls, bootstraps and builds: one line per step on stderr, all output in a log.

`images  postgres-pgmq: step 4/12 RUN apt-get update ... 3.2s` — the seconds are the
time since that image's work began, so a slow step shows as a gap between two lines. The
whole output (every build line, pull status and bootstrap line) goes to the log file when
one is given, so the terminal stays short and nothing is lost.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import TextIO

PREFIX = "images"
_SHOWN_TEXT = 72  # characters of a step's instruction shown on its line


class BuildProgress:
    """Where image work reports to; a context manager that closes the log file."""

    def __init__(
        self, stream: TextIO | None = None, log_path: Path | None = None, *, verbose: bool = False
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.log_path = log_path
        self.verbose = verbose  # also show every log line on the stream
        self._log: TextIO | None = None
        self._started: dict[str, float] = {}
        self._lock = threading.RLock()  # images are built side by side: whole lines

    def __enter__(self) -> BuildProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def begin(self, subject: str) -> None:
        """Start `subject`'s clock (an image name, or `debian-base`)."""
        self._started[subject] = time.perf_counter()

    def elapsed(self, subject: str) -> float:
        started = self._started.setdefault(subject, time.perf_counter())
        return time.perf_counter() - started

    def step(self, subject: str, text: str) -> None:
        """One short line on the stream (and in the log), stamped with the elapsed time."""
        shown = " ".join(text.split())
        if len(shown) > _SHOWN_TEXT:
            shown = shown[: _SHOWN_TEXT - 3] + "..."
        line = f"{PREFIX}  {subject}: {shown} {self.elapsed(subject):.1f}s"
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()
            self.log(subject, f"== {text.strip()} ({self.elapsed(subject):.1f}s)")

    def log(self, subject: str, line: str) -> None:
        """A line for the log file (and the stream too when verbose)."""
        with self._lock:
            self._log_line(subject, line)

    def _log_line(self, subject: str, line: str) -> None:
        if self.verbose:
            self.stream.write(f"{PREFIX}  {subject} | {line.rstrip()}\n")
        if self.log_path is None:
            return
        if self._log is None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("a", encoding="utf-8")
        self._log.write(f"{subject} | {line.rstrip()}\n")
        self._log.flush()

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
