"""One INFO record per HTTP request on `backend.access`: "GET /api/commands 200 3.1ms".

The record carries the request's correlation and test ids (bound by request_context), so a
test's log slice shows every request it made. Streams are logged once, when they open.
Health probes that no test sent (readiness polls, container healthchecks: several a second)
are logged at DEBUG, so they don't bury the service's own lines.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

from backend.utils.correlation import TEST_ID_HEADER

ACCESS_LOGGER = "backend.access"
HEALTH_PREFIX = "/api/health/"

logger = logging.getLogger(ACCESS_LOGGER)


def init_app(app: Flask) -> None:
    @app.before_request
    def start_clock() -> None:
        g.access_started = time.perf_counter()

    @app.after_request
    def log_access(response: Response) -> Response:
        started = g.pop("access_started", None)
        duration_ms = round((time.perf_counter() - started) * 1000, 1) if started else None
        probe = request.path.startswith(HEALTH_PREFIX) and not request.headers.get(TEST_ID_HEADER)
        level = logging.DEBUG if probe else logging.INFO
        if logger.isEnabledFor(level):
            logger.log(
                level,
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
