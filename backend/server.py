"""Serve the app with waitress; SIGTERM/SIGINT run the graceful shutdown, then exit 0."""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

from flask import Flask
from waitress.server import create_server

from backend.services.container import Container

logger = logging.getLogger(__name__)


class _StopServing(Exception):
    """Raised in the main thread to leave waitress's loop once shutdown has drained."""


def serve(app: Flask, host: str, port: int, threads: int) -> int:
    """Block serving requests until a signal; returns the process exit code."""
    container: Container = app.extensions["container"]
    server = create_server(app, host=host, port=port, threads=threads, ident="backend")
    shutdown_started = threading.Event()

    def drain_then_stop() -> None:
        report = container.coordinator.shutdown()
        if report.timed_out:
            logger.warning("Shutdown waiters timed out: %s", ", ".join(report.timed_out))
        # Wake the main thread out of the socket loop.
        os.kill(os.getpid(), signal.SIGUSR1)

    def on_stop_signal(signum: int, _frame: FrameType | None) -> None:
        if shutdown_started.is_set():
            return
        shutdown_started.set()
        logger.info("Received %s: shutting down gracefully", signal.Signals(signum).name)
        threading.Thread(target=drain_then_stop, name="shutdown", daemon=True).start()

    def on_drained(_signum: int, _frame: FrameType | None) -> None:
        raise _StopServing

    signal.signal(signal.SIGTERM, on_stop_signal)
    signal.signal(signal.SIGINT, on_stop_signal)
    signal.signal(signal.SIGUSR1, on_drained)
    bound_port = server.effective_port
    logger.info("Serving on http://%s:%s (threads=%d)", host, bound_port, threads)
    try:
        server.run()
    except _StopServing:
        pass
    finally:
        server.close()
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=2)
        container.close()
    logger.info("Backend stopped")
    return 0
