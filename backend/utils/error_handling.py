"""One JSON error shape for every failure: {"error", "code", "details", "correlationId"}."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from backend.utils.correlation import current_correlation_id
from backend.utils.errors import BusinessLogicException, RequestValidationException

logger = logging.getLogger(__name__)


def error_response(
    status: int, message: str, code: str | None, details: dict[str, Any] | None = None
) -> Response:
    body = {
        "error": message,
        "code": code,
        "details": details or {},
        "correlationId": current_correlation_id(),
    }
    response = jsonify(body)
    response.status_code = status
    return response


def validation_error_from_pydantic(
    exc: ValidationError, prefix: str = ""
) -> RequestValidationException:
    """Turn pydantic's error list into our 400 naming the first bad field."""
    errors = [
        {
            "field": ".".join(str(part) for part in err["loc"]) or "body",
            "reason": err["msg"],
        }
        for err in exc.errors()
    ]
    first = errors[0] if errors else {"field": "body", "reason": "invalid"}
    field = f"{prefix}{first['field']}" if prefix else first["field"]
    return RequestValidationException(field, first["reason"], errors)


def init_app(app: Flask) -> None:
    """Register the handlers that turn exceptions into the JSON error shape."""

    @app.errorhandler(BusinessLogicException)
    def handle_business(exc: BusinessLogicException) -> Response:
        response = error_response(exc.http_status, exc.message, exc.error_code, exc.details)
        retry_after = exc.details.get("retry_after")
        if exc.http_status == 503 and retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response

    @app.errorhandler(ValidationError)
    def handle_validation(exc: ValidationError) -> Response:
        return handle_business(validation_error_from_pydantic(exc))

    @app.errorhandler(HTTPException)
    def handle_http(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = (exc.name or "error").upper().replace(" ", "_")
        response = error_response(status, exc.description or exc.name, code)
        # Keep what the exception says about itself, e.g. the Allow header of a 405.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception) -> Response:
        # The traceback goes to the log (with the correlation id), never to the client.
        logger.exception("Unhandled error: %s", exc)
        return error_response(500, "Internal server error", "INTERNAL_ERROR")
