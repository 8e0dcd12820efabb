"""The backend's exceptions: one base class, each subclass maps to one HTTP status."""

from __future__ import annotations

from typing import Any


class BusinessLogicException(Exception):
    """A failure the caller can understand; `error_code` is machine-readable."""

    http_status = 400
    default_code: str | None = "BAD_REQUEST"

    def __init__(
        self,
        message: str,
        error_code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code if error_code is not None else self.default_code
        self.details = details or {}


class RecordNotFoundException(BusinessLogicException):
    http_status = 404
    default_code = "NOT_FOUND"

    def __init__(self, resource_type: str, identifier: object) -> None:
        super().__init__(
            f"{resource_type} {identifier} was not found",
            details={"resource_type": resource_type, "identifier": str(identifier)},
        )


class InvalidOperationException(BusinessLogicException):
    http_status = 409
    default_code = "INVALID_OPERATION"


class RequestValidationException(BusinessLogicException):
    """Bad input; `field` says which part of the request, `reason` says why."""

    http_status = 400
    default_code = "VALIDATION_ERROR"

    def __init__(self, field: str, reason: str, errors: list[dict[str, Any]] | None = None) -> None:
        details: dict[str, Any] = {"field": field, "reason": reason}
        if errors:
            details["errors"] = errors
        super().__init__(f"Invalid {field}: {reason}", details=details)
        self.field = field


class DependencyException(InvalidOperationException):
    """Deleting something that others still use."""

    default_code = "TYPE_IN_USE"

    def __init__(self, resource_type: str, identifier: object, dependency_desc: str) -> None:
        super().__init__(
            f"Cannot delete {resource_type} {identifier} because {dependency_desc}",
            details={"resource_type": resource_type, "identifier": str(identifier)},
        )


class ServiceBusyException(BusinessLogicException):
    """The operation cannot run now; retry after `retry_after` seconds."""

    http_status = 503
    default_code = "BUSY"

    def __init__(
        self,
        message: str,
        retry_after: int = 5,
        error_code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            message, error_code=error_code, details={**(details or {}), "retry_after": retry_after}
        )
        self.retry_after = retry_after


class DatabaseUnavailableException(ServiceBusyException):
    """The database does not answer; the message names it (never its password)."""

    default_code = "DATABASE_UNAVAILABLE"

    def __init__(self, database: str, reason: str, retry_after: int = 2) -> None:
        super().__init__(
            f"The database {database} is unavailable: {reason}. Retry when it is back.",
            retry_after=retry_after,
            details={"database": database, "reason": reason},
        )


class PayloadTooLargeException(BusinessLogicException):
    http_status = 413
    default_code = "PAYLOAD_TOO_LARGE"
