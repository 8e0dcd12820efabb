"""`report [DIR]` (see `orchestrator.cli.report`): serve a run's folder on 127.0.0.1 and open it.

The folder is served on a free port; its index.html then turns each trace link into
"View trace", which starts Playwright's trace viewer for that trace (`playwright show-trace`
in server mode, so no browser of Playwright's own is needed) and redirects to it. The page
opens in the Chromium that `orchestrator.browser.find_chromium()` finds (the system one
included); without a display the URL is printed instead. Ctrl-C stops everything.
Nothing outside the folder is served: a symbolic link that leads out of it answers 403.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import unquote

from orchestrator.artifacts.report import SERVER_PROBE, TRACE_ROUTE
from orchestrator.browser import find_chromium, playwright_chromium
from orchestrator.errors import PrerequisiteMissing

VIEWER_START_SECONDS = 30.0
_LISTENING = re.compile(r"Listening on (http://\S+)")


class TraceViewer:
    """`playwright show-trace` serving one trace on 127.0.0.1; `url` opens it."""

    def __init__(self, trace: Path) -> None:
        self.trace = trace
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    def start(self, timeout: float = VIEWER_START_SECONDS) -> TraceViewer:
        command = [sys.executable, "-m", "playwright", "show-trace"]
        command += ["--host", "127.0.0.1", "--port", "0", str(self.trace)]
        # BROWSER=none: the viewer must not open a tab itself; we redirect to it.
        env = {**os.environ, "BROWSER": "none"}
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
        )
        found = threading.Event()
        lines: list[str] = []
        output = self._process.stdout

        def read() -> None:
            for line in output or ():
                lines.append(line.rstrip())
                match = _LISTENING.search(line)
                if match and not found.is_set():
                    self.url = match.group(1)
                    found.set()

        threading.Thread(target=read, name="trace-viewer-output", daemon=True).start()
        deadline = time.perf_counter() + timeout
        while not found.wait(0.1):
            if self._process.poll() is not None or time.perf_counter() > deadline:
                self.stop()
                tail = "\n".join(lines[-10:]) or "(no output)"
                raise RuntimeError(
                    f"playwright show-trace did not start serving {self.trace}: {tail}"
                )
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class ReportServer:
    """Serves `folder` on 127.0.0.1 (a free port); GET /__view-trace/<path> starts a trace
    viewer for that trace (one per trace, reused) and redirects to it."""

    def __init__(self, folder: Path, port: int = 0) -> None:
        self.folder = folder.resolve()
        self._viewers: dict[Path, TraceViewer] = {}
        self._lock = threading.Lock()
        handler = partial(_Handler, self, directory=str(self.folder))
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="report-server", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def start(self) -> ReportServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            viewers, self._viewers = list(self._viewers.values()), {}
        for viewer in viewers:
            viewer.stop()

    def __enter__(self) -> ReportServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def inside(self, path: Path) -> bool:
        """True when `path`, every symbolic link followed, is in the served folder."""
        return path.resolve().is_relative_to(self.folder)

    def viewer_for(self, relative: str) -> TraceViewer:
        trace = (self.folder / relative).resolve()
        if not self.inside(trace) or not trace.is_file():
            raise FileNotFoundError(relative)
        with self._lock:
            viewer = self._viewers.get(trace)
            if viewer is None:
                viewer = self._viewers[trace] = TraceViewer(trace).start()
        return viewer


class _Handler(SimpleHTTPRequestHandler):
    def __init__(self, server_state: ReportServer, *args: Any, **kwargs: Any) -> None:
        self.state = server_state
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == f"/{SERVER_PROBE}":
            self._answer(200, "report server")
        elif path.startswith(f"/{TRACE_ROUTE}/"):
            self._view_trace(unquote(path[len(TRACE_ROUTE) + 2 :]))
        else:
            super().do_GET()

    def send_head(self) -> BytesIO | BinaryIO | None:  # GET and HEAD of files and folders
        if not self.state.inside(Path(self.translate_path(self.path))):
            self.send_error(403, "outside the served folder (a symbolic link leads out of it)")
            return None
        return super().send_head()

    def _view_trace(self, relative: str) -> None:
        try:
            viewer = self.state.viewer_for(relative)
        except FileNotFoundError:
            self._answer(404, f"no trace {relative} in {self.state.folder}")
            return
        except RuntimeError as exc:
            self._answer(503, str(exc))
            return
        self.send_response(302)
        self.send_header("Location", viewer.url)
        self.end_headers()

    def _answer(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a quiet server: the terminal shows the URL and nothing else


def open_in_browser(url: str) -> str | None:
    """Open `url` in the Chromium find_chromium() finds; None when there is no display
    (or no Chromium), else which browser was started."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return None
    try:
        choice = find_chromium()
    except PrerequisiteMissing:
        return None
    own = playwright_chromium()
    executable = choice.executable_path or (str(own) if own else None)
    if executable is None:
        return None
    args = list(choice.args)  # the system Chromium's flags; none for Playwright's own
    subprocess.Popen(
        [executable, *args, "--new-window", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return executable


def cannot_listen(port: int, error: OSError) -> str:
    """One line: why the server could not listen on `port`, and what to do."""
    fix = "Fix: pass another --port, or leave --port out for a free one."
    if error.errno == errno.EADDRINUSE:
        return f"port {port} on 127.0.0.1 is in use. {fix}"
    if error.errno == errno.EACCES:
        return f"port {port} on 127.0.0.1 needs privileges this user lacks. {fix}"
    return f"cannot listen on 127.0.0.1 port {port}: {error.strerror or error}. {fix}"
