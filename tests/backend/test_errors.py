"""One JSON error shape for every failure: {"error", "code", "details", "correlationId"}."""

from __future__ import annotations

import logging
import secrets

import pytest

from backend.utils.errors import (
    DependencyException,
    InvalidOperationException,
    RecordNotFoundException,
    RequestValidationException,
    ServiceBusyException,
)
from tests.fixtures.backend import app_on
from tests.fixtures.backend import testing_settings as settings_for

ERROR_KEYS = {"error", "code", "details", "correlationId"}
TYPES = "/api/command-types"


def error_body(response, status: int, code: str) -> dict:
    """The body of an error response, after checking the shape every error shares."""
    body = response.json
    assert response.status_code == status, body
    assert response.mimetype == "application/json"
    assert set(body) == ERROR_KEYS, body
    assert body["code"] == code
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["details"], dict)
    assert body["correlationId"] == response.headers["X-Request-Id"]
    return body


# --- through the app ------------------------------------------------------------------------


def test_400_names_the_field_and_the_reason(client):
    response = client.post(TYPES, json={"domain": "Not A Domain", "name": "Valid"})
    body = error_body(response, 400, "VALIDATION_ERROR")
    assert body["details"]["field"] == "domain"
    assert "pattern" in body["details"]["reason"]
    assert body["error"] == f"Invalid domain: {body['details']['reason']}"


def test_404_for_an_unknown_command_type_id(client):
    body = error_body(client.get(f"{TYPES}/987654321"), 404, "NOT_FOUND")
    assert body["error"] == "Command type 987654321 was not found"
    assert body["details"] == {"resource_type": "Command type", "identifier": "987654321"}


def test_404_for_an_unknown_route(client):
    error_body(client.get("/api/definitely-not-a-route"), 404, "NOT_FOUND")


def test_405_for_a_wrong_method(client):
    body = error_body(client.delete("/api/health/healthz"), 405, "METHOD_NOT_ALLOWED")
    assert "method is not allowed" in body["error"]


def test_405_says_which_methods_are_allowed(client):
    response = client.delete("/api/health/healthz")
    assert response.status_code == 405
    assert "GET" in response.headers.get("Allow", "")


def test_409_for_a_duplicate(client):
    new_type = {"domain": "test", "name": f"Dup_{secrets.token_hex(4)}"}
    assert client.post(TYPES, json=new_type).status_code == 201
    body = error_body(client.post(TYPES, json=new_type), 409, "ALREADY_EXISTS")
    assert new_type["name"] in body["error"]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("{bad", "malformed JSON"), ('[{"domain": "x"}]', "must be a JSON object"), ("7", "object")],
    ids=["malformed", "array", "number"],
)
def test_bad_json_body_is_400_not_500(client, raw, reason):
    response = client.post(TYPES, data=raw, content_type="application/json")
    body = error_body(response, 400, "VALIDATION_ERROR")
    assert body["details"]["field"] == "body"
    assert reason in body["details"]["reason"]


@pytest.mark.unhandled_errors_expected
def test_unhandled_exception_is_500_with_the_same_shape_and_a_logged_traceback(
    migrated_database_url, caplog
):
    def explode():
        raise RuntimeError("secret internals: kaboom")

    with app_on(settings_for(migrated_database_url)) as app:
        app.add_url_rule("/api/explode", "explode", explode)
        with caplog.at_level(logging.ERROR):
            response = app.test_client().get("/api/explode", headers={"X-Request-Id": "boom-1"})

    body = error_body(response, 500, "INTERNAL_ERROR")
    assert body == {
        "error": "Internal server error",
        "code": "INTERNAL_ERROR",
        "details": {},
        "correlationId": "boom-1",
    }
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "kaboom" not in text

    logged = [r for r in caplog.records if r.exc_info and r.exc_info[0] is RuntimeError]
    assert len(logged) == 1, caplog.text
    assert logged[0].levelno == logging.ERROR
    assert logged[0].correlation_id == "boom-1"
    assert "Traceback" in caplog.text and "RuntimeError: secret internals: kaboom" in caplog.text


# --- the exception classes --------------------------------------------------------------------


def test_dependency_exception_message_and_code():
    exc = DependencyException("Command type", 5, "it is used by 3 test command(s)")
    assert str(exc) == "Cannot delete Command type 5 because it is used by 3 test command(s)"
    assert exc.message == str(exc)
    assert exc.error_code == "TYPE_IN_USE"
    assert exc.http_status == 409
    assert exc.details == {"resource_type": "Command type", "identifier": "5"}
    assert isinstance(exc, InvalidOperationException)


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (RecordNotFoundException("Command", "x"), 404, "NOT_FOUND"),
        (RequestValidationException("seed", "must be true or false"), 400, "VALIDATION_ERROR"),
        (InvalidOperationException("nope"), 409, "INVALID_OPERATION"),
        (InvalidOperationException("dup", error_code="ALREADY_EXISTS"), 409, "ALREADY_EXISTS"),
        (ServiceBusyException("busy"), 503, "BUSY"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else None,
)
def test_each_exception_maps_to_one_status_and_code(exc, status, code):
    assert (exc.http_status, exc.error_code) == (status, code)


def test_service_busy_carries_retry_after():
    exc = ServiceBusyException("busy", retry_after=7)
    assert exc.retry_after == 7
    assert exc.details == {"retry_after": 7}
