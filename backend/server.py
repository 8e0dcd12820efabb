"""Serve the app with waitress; SIGTERM/SIGINT run the graceful shutdown, then exit 0.

The signal handler only starts the drain; the main thread runs waitress's socket loop one
step at a time and leaves it once the drain has finished (raising out of a signal handler
could land inside a waitress callback, which swallows it).
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

from flask import Flask
from waitress.server import create_server

from backend.config import Settings
from backend.services.container import Container

logger = logging.getLogger(__name__)

_LOOP_STEP = 0.2  # seconds the socket loop waits before checking whether to stop


def waitress_options(settings: Settings) -> dict[str, Any]:
    """waitress's limits, from the settings (README "Capacity" explains each)."""
    return {
        "threads": settings.waitress_threads,
        # Idle keep-alive sockets cost no thread, only a slot: allow many, so a crowd of them
        # can't stop waitress from accepting the next health probe (its default is 100).
        "connection_limit": settings.waitress_connection_limit,
        "channel_timeout": settings.waitress_channel_timeout,
        # Flask answers 413 with the error shape up to here; waitress cuts absurd bodies.
        "max_request_body_size": 4 * settings.max_request_bytes,
        "asyncore_use_poll": True,  # select() stops at 1024 descriptors
        "ident": "backend",
    }


def serve(app: Flask, host: str, port: int) -> int:
    """Block serving requests until a signal; returns the process exit code."""
    container: Container = app.extensions["container"]
    options = waitress_options(container.settings)
    threads = options["threads"]
    server = create_server(app, host=host, port=port, **options)
    shutdown_started = threading.Event()
    drained = threading.Event()

    def drain() -> None:
        report = container.coordinator.shutdown()
        if report.timed_out:
            logger.warning("Shutdown waiters timed out: %s", ", ".join(report.timed_out))
        drained.set()
        server.pull_trigger()  # wake the socket loop now, not after its current step

    def on_stop_signal(signum: int, _frame: FrameType | None) -> None:
        if shutdown_started.is_set():
            return
        shutdown_started.set()
        logger.info("Received %s: shutting down gracefully", signal.Signals(signum).name)
        threading.Thread(target=drain, name="shutdown", daemon=True).start()

    signal.signal(signal.SIGTERM, on_stop_signal)
    signal.signal(signal.SIGINT, on_stop_signal)
    logger.info(
        "Serving on http://%s:%s (threads=%d, streams<=%d, connections<=%d)",
        host,
        server.effective_port,
        threads,
        container.settings.stream_limit,
        options["connection_limit"],
    )
    try:
        # waitress's own run() loops until its socket map is empty; we loop until drained.
        socket_map = server._map
        while not drained.is_set():
            server.asyncore.loop(timeout=_LOOP_STEP, map=socket_map, count=1)
    finally:
        server.close()
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=2)
        container.close()
    logger.info("Backend stopped")
    return 0
