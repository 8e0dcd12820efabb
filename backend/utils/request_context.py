"""Per-request correlation: accept or mint X-Request-Id, carry X-Test-Id, echo both."""

from __future__ import annotations

from flask import Flask, Response, g, request

from backend.utils.correlation import (
    REQUEST_ID_HEADER,
    TEST_ID_HEADER,
    correlation_id_var,
    new_correlation_id,
    sanitize_id,
    test_id_var,
)


def init_app(app: Flask) -> None:
    @app.before_request
    def bind_ids() -> None:
        correlation_id = sanitize_id(request.headers.get(REQUEST_ID_HEADER))
        test_id = sanitize_id(request.headers.get(TEST_ID_HEADER))
        g.correlation_token = correlation_id_var.set(correlation_id or new_correlation_id())
        g.test_token = test_id_var.set(test_id)

    @app.after_request
    def echo_ids(response: Response) -> Response:
        correlation_id = correlation_id_var.get()
        if correlation_id:
            response.headers[REQUEST_ID_HEADER] = correlation_id
        test_id = test_id_var.get()
        if test_id:
            response.headers[TEST_ID_HEADER] = test_id
        return response

    @app.teardown_request
    def unbind_ids(_exc: BaseException | None) -> None:
        # Waitress reuses threads: never let one request's ids leak into the next.
        for name, var in (("correlation_token", correlation_id_var), ("test_token", test_id_var)):
            token = g.pop(name, None)
            if token is not None:
                try:
                    var.reset(token)
                except ValueError:
                    var.set(None)
