"""What views need from the app: its container and the current request's ids."""

from __future__ import annotations

from typing import Any, TypeVar

from flask import current_app, request
from pydantic import BaseModel, ValidationError

from backend.services.container import Container
from backend.utils.correlation import current_correlation_id, current_test_id
from backend.utils.error_handling import validation_error_from_pydantic
from backend.utils.errors import RequestValidationException
from backend.utils.text_safety import find_unstorable_text

Schema = TypeVar("Schema", bound=BaseModel)


def container() -> Container:
    return current_app.extensions["container"]


def request_ids() -> tuple[str | None, str | None]:
    """(correlation id, test id) of the current request, as plain data for generators."""
    return current_correlation_id(), current_test_id()


def json_body() -> dict[str, Any]:
    """The request's JSON object; malformed or non-object JSON is a 400, never a 500.

    So is text the database cannot store (NUL, lone surrogates), wherever it sits.
    """
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        body = request.get_json(force=True, silent=False)
    except Exception:
        raise RequestValidationException("body", "malformed JSON") from None
    if not isinstance(body, dict):
        raise RequestValidationException("body", "must be a JSON object")
    unstorable = find_unstorable_text(body, "")
    if unstorable is not None:
        raise RequestValidationException(*unstorable)
    return body


def parse_body(schema: type[Schema]) -> Schema:
    try:
        return schema.model_validate(json_body())
    except ValidationError as exc:
        raise validation_error_from_pydantic(exc) from None
