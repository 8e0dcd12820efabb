"""One INFO record per HTTP request on `backend.access`: "GET /api/commands 200 3.1ms".

The record carries the request's correlation and test ids (bound by request_context), so a
test's log slice shows every request it made. Streams are logged once, when they open.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

ACCESS_LOGGER = "backend.access"

logger = logging.getLogger(ACCESS_LOGGER)


def init_app(app: Flask) -> None:
    @app.before_request
    def start_clock() -> None:
        g.access_started = time.perf_counter()

    @app.after_request
    def log_access(response: Response) -> Response:
        started = g.pop("access_started", None)
        duration_ms = round((time.perf_counter() - started) * 1000, 1) if started else None
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "%s %s %d %sms",
                request.method,
                request.path,
                response.status_code,
                duration_ms,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": duration_ms,
                },
            )
        return response
