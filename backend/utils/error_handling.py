"""One JSON error shape for every failure: {"error", "code", "details", "correlationId"}."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from backend.utils.correlation import current_correlation_id
from backend.utils.errors import (
    BusinessLogicException,
    PayloadTooLargeException,
    RequestValidationException,
)

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


def handle_business(exc: BusinessLogicException) -> Response:
    """The error shape for one of our exceptions (with Retry-After on a 503)."""
    response = error_response(exc.http_status, exc.message, exc.error_code, exc.details)
    retry_after = exc.details.get("retry_after")
    if exc.http_status == 503 and retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def internal_error_response(exc: Exception) -> Response:
    """A server bug: the traceback goes to the log (with the correlation id), never out."""
    logger.exception("Unhandled error: %s", exc)
    return error_response(500, "Internal server error", "INTERNAL_ERROR")


def init_app(app: Flask) -> None:
    """Register the handlers that turn exceptions into the JSON error shape."""
    app.register_error_handler(BusinessLogicException, handle_business)

    @app.errorhandler(RequestEntityTooLarge)
    def handle_too_large(_exc: RequestEntityTooLarge) -> Response:
        limit = app.config.get("MAX_CONTENT_LENGTH")
        return handle_business(
            PayloadTooLargeException(
                f"The request body is larger than the limit of {limit} bytes "
                "(MAX_REQUEST_BYTES); send a smaller payload",
                details={"limit_bytes": limit},
            )
        )

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

    app.register_error_handler(Exception, internal_error_response)
