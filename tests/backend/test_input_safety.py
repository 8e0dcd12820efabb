"""Text PostgreSQL can't store, and domains PGMQ can't queue: 400 with the error shape, and
nothing written (real database, no workers)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient

from backend.bus import MAX_DOMAIN_LENGTH, PGMQ_MAX_QUEUE_NAME, queue_name
from backend.utils.text_safety import find_unstorable_text, text_problem
from tests.backend.consistency import assert_consistent, assert_error_shape, no_unhandled_errors

NUL = "\x00"
SURROGATE = "\ud800"


def _counts(url: str) -> tuple[int, int, int, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM test_command), (SELECT count(*) FROM"
            " commandbus.command), (SELECT count(*) FROM command_type), (SELECT count(*) FROM"
            " pgmq.meta)"
        ).fetchone()
    assert row is not None
    return row


def _post_raw(client: FlaskClient, path: str, body: dict[str, Any]) -> Any:
    # json.dumps escapes both as \u0000 / \ud800: exactly what a client puts on the wire.
    return client.post(path, data=json.dumps(body), content_type="application/json")


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "lone-surrogate"])
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/api/commands",
            {"command_type": "TestCommand", "behavior": {"type": "success"},
             "payload": {"note": "a{bad}b"}},
            "payload.note",
        ),
        (
            "/api/commands",
            {"command_type": "TestCommand", "behavior": {"type": "success"},
             "payload": {"list": ["ok", {"deep": "x{bad}"}]}},
            "payload.list.1.deep",
        ),
        (
            "/api/commands",
            {"command_type": "Test{bad}Command", "behavior": {"type": "success"}},
            "command_type",
        ),
        (
            "/api/commands/bulk",
            {"command_type": "TestCommand", "count": 5, "behavior": {"type": "success"},
             "payload": {"note": "{bad}"}},
            "payload.note",
        ),
        (
            "/api/command-types",
            {"domain": "test", "name": "Fine", "description": "d{bad}"},
            "description",
        ),
        ("/api/tsq/bulk", {"action": "cancel", "command_ids": ["{bad}"]}, "command_ids.0"),
    ],
    ids=["payload", "nested-payload", "command-type", "bulk-payload", "type-description", "tsq"],
)  # fmt: skip
def test_unstorable_text_in_any_json_string_is_400(
    client: FlaskClient,
    migrated_database_url: str,
    bad: str,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    filled = json.loads(json.dumps(body).replace("{bad}", json.dumps(bad)[1:-1]))
    before = _counts(migrated_database_url)
    with no_unhandled_errors():
        response = _post_raw(client, path, filled)
    error = assert_error_shape(response, 400, "VALIDATION_ERROR")
    assert error["details"]["field"] == field
    assert ("NUL" if bad == NUL else "surrogate") in error["details"]["reason"]
    assert _counts(migrated_database_url) == before
    assert_consistent(migrated_database_url)


def test_unstorable_text_in_a_key_is_400(client: FlaskClient) -> None:
    body = {"command_type": "TestCommand", "behavior": {"type": "success"},
            "payload": {"a\u0000b": 1}}  # fmt: skip
    error = assert_error_shape(_post_raw(client, "/api/commands", body), 400, "VALIDATION_ERROR")
    assert error["details"]["field"] == "payload (a key)"


@pytest.mark.parametrize("param", ["status", "domain", "command_type", "test_id", "page"])
@pytest.mark.parametrize("raw", ["%00", "a%00b"])
def test_nul_in_a_list_filter_is_400(
    client: FlaskClient, migrated_database_url: str, param: str, raw: str
) -> None:
    with no_unhandled_errors():
        response = client.get(f"/api/commands?{param}={raw}")
    error = assert_error_shape(response, 400, "VALIDATION_ERROR")
    assert param in error["details"]["field"]
    assert "NUL" in error["details"]["reason"]


def test_text_checks_accept_ordinary_unicode() -> None:
    assert text_problem("grüße 😀 \u2028") is None
    assert find_unstorable_text({"a": ["b", {"c": "😀"}]}, "") is None
    assert find_unstorable_text({"a": ["b", {"c": "x\x00"}]}, "") == (
        "a.1.c",
        "contains a NUL character (\\u0000), which PostgreSQL cannot store",
    )


def test_emoji_payload_round_trips(client: FlaskClient) -> None:
    payload = {"text": "grüße 😀", "pair": "\U0001f600"}
    body = {"command_type": "TestCommand", "behavior": {"type": "success"}, "payload": payload}
    response = _post_raw(client, "/api/commands", body)
    assert response.status_code == 201, response.json
    detail = client.get(f"/api/commands/{response.json['command_id']}").json
    assert detail["payload"] == payload


# -- domains that fit a PGMQ queue name -------------------------------------------------------


def test_the_domain_bound_is_pgmq_s_queue_name_limit(migrated_database_url: str) -> None:
    """Pins MAX_DOMAIN_LENGTH to the installed PGMQ: 47 characters pass, 48 are refused."""
    longest = "q" * PGMQ_MAX_QUEUE_NAME
    with psycopg.connect(migrated_database_url) as conn:
        conn.execute("SELECT pgmq.create(%s)", (longest,))
        conn.execute("SELECT pgmq.drop_queue(%s)", (longest,))
        with pytest.raises(psycopg.errors.RaiseException, match="too long"):
            conn.execute("SELECT pgmq.create(%s)", (longest + "q",))
    assert len(queue_name("d" * MAX_DOMAIN_LENGTH)) == PGMQ_MAX_QUEUE_NAME


def test_a_domain_of_the_longest_allowed_length_works(
    client: FlaskClient, migrated_database_url: str
) -> None:
    domain = ("d" + uuid.uuid4().hex * 2)[:MAX_DOMAIN_LENGTH]
    created = client.post("/api/command-types", json={"domain": domain, "name": "Longest"})
    assert created.status_code == 201, created.json
    sent = client.post(
        "/api/commands",
        json={"command_type": "Longest", "domain": domain, "behavior": {"type": "success"}},
    )
    assert sent.status_code == 201, sent.json
    assert sent.json["domain"] == domain
    assert_consistent(migrated_database_url)


@pytest.mark.parametrize("length", [MAX_DOMAIN_LENGTH + 1, 50, 63, 64])
def test_a_longer_domain_is_400_and_creates_nothing(
    client: FlaskClient, migrated_database_url: str, length: int
) -> None:
    before = _counts(migrated_database_url)
    with no_unhandled_errors():
        response = client.post("/api/command-types", json={"domain": "d" * length, "name": "X"})
    error = assert_error_shape(response, 400, "VALIDATION_ERROR")
    assert error["details"]["field"] == "domain"
    assert str(MAX_DOMAIN_LENGTH) in error["details"]["reason"]
    assert _counts(migrated_database_url) == before


def test_the_database_refuses_a_longer_domain_too(migrated_database_url: str) -> None:
    with (
        psycopg.connect(migrated_database_url) as conn,
        pytest.raises(psycopg.errors.CheckViolation),
    ):
        conn.execute(
            "INSERT INTO command_type (domain, name) VALUES (%s, 'X')",
            ("d" * (MAX_DOMAIN_LENGTH + 1),),
        )
