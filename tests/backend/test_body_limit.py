"""The request body limit (MAX_REQUEST_BYTES) and the bulk's shared payload, stored once."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
import requests
from flask import Flask

from backend.config import Settings
from tests.backend.consistency import assert_consistent, assert_error_shape, no_unhandled_errors
from tests.fixtures.backend import LiveServer, app_on, testing_settings, wait_until

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def limited_app(make_migrated_database: Callable[[], str]) -> Iterator[Flask]:
    with app_on(testing_settings(make_migrated_database(), max_request_bytes=LIMIT)) as app:
        yield app


def _send_body(size: int) -> dict:
    return {
        "command_type": "TestCommand",
        "behavior": {"type": "success"},
        "payload": {"blob": "x" * size},
    }


def test_a_body_over_the_limit_is_413_with_the_error_shape(limited_app: Flask) -> None:
    client = limited_app.test_client()
    url = limited_app.config["SETTINGS"].database_url
    with no_unhandled_errors():
        response = client.post("/api/commands", json=_send_body(LIMIT))
    error = assert_error_shape(response, 413, "PAYLOAD_TOO_LARGE")
    assert error["details"]["limit_bytes"] == LIMIT
    assert "MAX_REQUEST_BYTES" in error["error"]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM test_command").fetchone() == (0,)


def test_a_body_under_the_limit_is_stored(limited_app: Flask) -> None:
    response = limited_app.test_client().post("/api/commands", json=_send_body(LIMIT // 2))
    assert response.status_code == 201, response.json


def test_a_chunked_body_over_the_limit_is_413_through_waitress(limited_app: Flask) -> None:
    """No Content-Length: the limit holds for the bytes actually read."""
    server = LiveServer(limited_app).start()
    try:
        chunk = b'{"command_type": "TestCommand", "behavior": {"type": "success"},'
        chunk += b' "payload": {"b": "'

        def body() -> Iterator[bytes]:
            yield chunk
            for _ in range(LIMIT // 1024 + 1):
                yield b"y" * 1024
            yield b'"}}'

        response = requests.post(
            server.url + "/api/commands",
            data=body(),
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        assert_error_shape(response, 413, "PAYLOAD_TOO_LARGE")
    finally:
        server.stop()


def test_the_limit_is_a_documented_setting() -> None:
    assert Settings.from_env({"DATABASE_URL": "postgresql://h/db"}).max_request_bytes == 1_048_576
    settings = Settings.from_env({"DATABASE_URL": "postgresql://h/db", "MAX_REQUEST_BYTES": "10"})
    assert settings.max_request_bytes == 10


def test_a_bulk_stores_its_payload_once(client, migrated_database_url: str) -> None:
    test_id = f"payload-{uuid.uuid4().hex[:8]}"
    payload = {"blob": "z" * 100_000, "n": 7}
    response = client.post(
        "/api/commands/bulk",
        json={"command_type": "TestCommand", "count": 50, "behavior": {"type": "success"},
              "payload": payload},
        headers={"X-Test-Id": test_id},
    )  # fmt: skip
    assert response.status_code == 202, response.json
    task_id = response.json["task_id"]
    wait_until(lambda: client.get(f"/api/tasks/{task_id}").json["done"], 30, message="the bulk")
    with psycopg.connect(migrated_database_url) as conn:
        rows = conn.execute(
            "SELECT count(*), count(DISTINCT payload_id), count(payload) FROM test_command"
            " WHERE test_id = %s",
            (test_id,),
        ).fetchone()
        stored = conn.execute(
            "SELECT p.payload FROM command_payload p JOIN test_command t ON t.payload_id = p.id"
            " WHERE t.test_id = %s LIMIT 1",
            (test_id,),
        ).fetchone()
        message_bytes = conn.execute(
            "SELECT max(length(q.message::text)) FROM pgmq.q_test__commands q"
            " JOIN test_command t ON t.command_id = (q.message->>'command_id')::uuid"
            " WHERE t.test_id = %s",
            (test_id,),
        ).fetchone()
    assert rows == (50, 1, 0)  # 50 commands, one shared payload, no per-row copy
    assert stored == (payload,)
    assert message_bytes is not None and message_bytes[0] < 2_000  # no copy in the messages
    some_command = client.get(f"/api/commands?test_id={test_id}&page_size=1").json["items"][0]
    detail = client.get(f"/api/commands/{some_command['command_id']}").json
    assert detail["payload"] == payload
    assert_consistent(migrated_database_url)
