"""The commands, stats, audit, config and bulk APIs against a real database (no workers).

Write tests use the module's `client` and tag their commands with their own X-Test-Id, so
they never see each other's rows. Read tests use a second app whose database was reset with
the seed dataset, so their expectations are exact.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from backend.app import create_app
from backend.services.container import Container
from backend.services.seed_data import SEED_COMMANDS
from tests.fixtures import backend as fixtures
from tests.fixtures.backend import LiveServer, wait_until

SUCCESS = {"type": "success"}
SEED_ID = "00000000-0000-4000-8000-{:012d}"


def json_of(response: TestResponse) -> Any:
    """The response's JSON (werkzeug types `.json` as optional)."""
    return response.json


def _test_id() -> str:
    return f"api-{uuid.uuid4().hex[:12]}"


def _send(
    client: FlaskClient,
    behavior: Any = SUCCESS,
    test_id: str | None = None,
    command_type: str = "TestCommand",
    **headers: str,
) -> Any:
    body: dict[str, Any] = {"command_type": command_type, "payload": {"n": 1}}
    if behavior is not None:
        body["behavior"] = behavior
    if test_id:
        headers["X-Test-Id"] = test_id
    return client.post("/api/commands", json=body, headers=headers)


def _scalar(url: str, sql: str, *params: object) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def _row_counts(url: str) -> tuple[int, int, int]:
    """(test_command rows, bus command rows, queued messages)."""
    return (
        _scalar(url, "SELECT count(*) FROM test_command"),
        _scalar(url, "SELECT count(*) FROM commandbus.command"),
        _scalar(url, "SELECT count(*) FROM pgmq.q_test__commands"),
    )


def _assert_validation_error(response: Any, field: str) -> dict[str, Any]:
    assert response.status_code == 400, json_of(response)
    body = json_of(response)
    assert body["code"] == "VALIDATION_ERROR"
    assert body["details"]["field"] == field, body
    assert body["error"].startswith(f"Invalid {field}")
    return body


# -- sending one command ----------------------------------------------------------------


def test_send_returns_201_pending_and_writes_both_rows(
    client: FlaskClient, migrated_database_url: str
) -> None:
    test_id = _test_id()
    response = _send(
        client,
        {"type": "fail_permanent", "error_code": "E1"},
        test_id,
        **{"X-Request-Id": "req-abc-1"},
    )
    assert response.status_code == 201, json_of(response)
    body = json_of(response)
    assert body["status"] == "PENDING"
    command_id = str(uuid.UUID(body["command_id"]))
    url = migrated_database_url
    with psycopg.connect(url) as conn:
        app_row = conn.execute(
            "SELECT behavior, correlation_id, test_id, payload FROM test_command"
            " WHERE command_id = %s",
            (command_id,),
        ).fetchone()
        bus_row = conn.execute(
            "SELECT status, domain, command_type, max_attempts FROM commandbus.command"
            " WHERE command_id = %s",
            (command_id,),
        ).fetchone()
        queued = conn.execute(
            "SELECT count(*) FROM pgmq.q_test__commands WHERE message->>'command_id' = %s",
            (command_id,),
        ).fetchone()
    assert app_row is not None
    assert app_row[0]["type"] == "fail_permanent" and app_row[0]["error_code"] == "E1"
    assert app_row[1:] == ("req-abc-1", test_id, {"n": 1})
    assert bus_row == ("PENDING", "test", "TestCommand", 3)
    assert queued == (1,)


def test_unknown_command_type_is_400_and_writes_nothing(
    client: FlaskClient, migrated_database_url: str
) -> None:
    before = _row_counts(migrated_database_url)
    response = _send(client, command_type="NoSuchCommand")
    body = _assert_validation_error(response, "command_type")
    assert "NoSuchCommand" in body["error"]
    assert _row_counts(migrated_database_url) == before


def test_app_row_and_bus_command_share_one_transaction(
    client: FlaskClient, migrated_database_url: str
) -> None:
    """A type whose domain has no queue: the app row is inserted, then the bus send fails.

    Neither row may survive: the insert is rolled back with the failed send.
    """
    name = f"Ghost{uuid.uuid4().hex[:8]}"
    created = client.post("/api/command-types", json={"domain": "ghost", "name": name})
    assert created.status_code == 201, json_of(created)
    with psycopg.connect(migrated_database_url) as conn:  # whoever made it, no queue now
        conn.execute(
            "SELECT pgmq.drop_queue(queue_name) FROM pgmq.meta WHERE queue_name = 'ghost__commands'"
        )
    before = _row_counts(migrated_database_url)
    ghost_rows = (
        "SELECT count(*) FROM test_command t JOIN command_type c ON c.id = t.command_type_id"
        " WHERE c.name = %s"
    )

    response = _send(client, command_type=name)

    assert response.status_code == 409, json_of(response)
    assert json_of(response)["code"] == "QUEUE_MISSING"
    assert json_of(response)["details"] == {"domain": "ghost", "queue": "ghost__commands"}
    assert _row_counts(migrated_database_url) == before
    assert _scalar(migrated_database_url, ghost_rows, name) == 0
    assert (
        _scalar(
            migrated_database_url,
            "SELECT count(*) FROM commandbus.command WHERE command_type = %s",
            name,
        )
        == 0
    )


def test_a_command_type_of_a_new_domain_can_be_sent(client: FlaskClient) -> None:
    """Regression: a new domain's type used to have no queue, and sending it was a 500."""
    name = f"Fresh{uuid.uuid4().hex[:8]}"
    created = client.post("/api/command-types", json={"domain": "fresh", "name": name})
    assert created.status_code == 201
    response = _send(client, command_type=name)
    assert response.status_code == 201, json_of(response)
    assert json_of(response)["domain"] == "fresh"


@pytest.mark.parametrize(
    ("behavior", "field"),
    [
        ({"type": "explode"}, "behavior.type"),
        ({"type": "success", "execution_time_ms": -5}, "behavior.execution_time_ms"),
        ({"type": "success", "execution_time_ms": "5"}, "behavior.execution_time_ms"),
        ({"type": "success", "color": "red"}, "behavior.color"),
        (
            {"type": "fail_transient_then_succeed", "transient_failures": 101},
            "behavior.transient_failures",
        ),
        (None, "behavior"),
        ("success", "behavior"),
    ],
)
def test_invalid_behavior_is_400_naming_the_field(
    client: FlaskClient, migrated_database_url: str, behavior: Any, field: str
) -> None:
    before = _row_counts(migrated_database_url)
    _assert_validation_error(_send(client, behavior), field)
    assert _row_counts(migrated_database_url) == before


def test_failures_reaching_max_attempts_are_accepted_with_a_tsq_note(
    client: FlaskClient,
    stored_config: Callable[[dict[str, Any]], None],
    migrated_database_url: str,
) -> None:
    """The operator-retry scenario: more failures than attempts is a 201 that says the
    command will reach the troubleshooting queue (checked against the max_attempts in use)."""
    behavior = {"type": "fail_transient_then_succeed", "transient_failures": 4}
    before = _row_counts(migrated_database_url)
    response = _send(client, behavior)
    assert response.status_code == 201, json_of(response)
    sent = json_of(response)
    assert sent["status"] == "PENDING"
    assert sent["expected"] == "troubleshooting_queue"
    assert sent["operator_retries"] == 1
    assert "max_attempts 3" in sent["note"] and "troubleshooting queue" in sent["note"]
    assert _row_counts(migrated_database_url)[:2] == (before[0] + 1, before[1] + 1)

    stored_config({"retry": {"max_attempts": 5}})
    below = json_of(_send(client, behavior))
    assert "note" not in below and "expected" not in below, below
    at = json_of(_send(client, {**behavior, "transient_failures": 5}))
    assert at["expected"] == "troubleshooting_queue"
    assert "max_attempts 5" in at["note"]


def test_malformed_json_body_is_400(client: FlaskClient) -> None:
    response = client.post(
        "/api/commands", data="{not json", headers={"Content-Type": "application/json"}
    )
    _assert_validation_error(response, "body")


# -- reading one command ----------------------------------------------------------------


def test_get_command_shape_of_a_fresh_command(client: FlaskClient) -> None:
    test_id = _test_id()
    sent = _send(client, {"type": "success", "execution_time_ms": 5}, test_id)
    command_id = json_of(sent)["command_id"]
    response = client.get(f"/api/commands/{command_id}")
    assert response.status_code == 200
    detail = json_of(response)
    expected_keys = {
        "command_id", "domain", "command_type", "status", "attempts", "behavior", "payload",
        "result", "last_error", "created_at", "processed_at", "audit",
    }  # fmt: skip
    assert expected_keys <= detail.keys()
    assert detail["command_id"] == command_id
    assert (detail["domain"], detail["command_type"], detail["status"]) == (
        "test",
        "TestCommand",
        "PENDING",
    )
    assert detail["attempts"] == 0
    assert detail["behavior"]["type"] == "success"
    assert detail["behavior"]["execution_time_ms"] == 5
    assert detail["payload"] == {"n": 1}
    assert detail["result"] is None
    assert detail["last_error"] is None
    assert detail["processed_at"] is None
    assert detail["test_id"] == test_id
    assert [event["event_type"] for event in detail["audit"]] == ["SENT"]
    event = detail["audit"][0]
    assert set(event) == {"event_type", "timestamp", "details"}
    assert isinstance(event["details"], dict)


def test_audit_is_listed_in_recording_order_not_timestamp_order(
    client: FlaskClient, migrated_database_url: str
) -> None:
    """Audit stamps are transaction starts: a redelivery can be stamped before the failure
    that released it. The trail must follow the order the events were recorded in."""
    command_id = json_of(_send(client, SUCCESS, _test_id()))["command_id"]
    with psycopg.connect(migrated_database_url) as conn:
        for event, offset in (("RECEIVED", "0.2"), ("FAILED", "0.3"), ("RECEIVED", "0.1")):
            conn.execute(
                "INSERT INTO commandbus.audit (domain, command_id, event_type, ts)"
                " VALUES ('test', %s, %s, NOW() + make_interval(secs => %s))",
                (command_id, event, float(offset)),
            )
    detail = json_of(client.get(f"/api/commands/{command_id}"))
    audit = json_of(client.get("/api/audit", query_string={"command_id": command_id}))
    expected = ["SENT", "RECEIVED", "FAILED", "RECEIVED"]
    assert [e["event_type"] for e in detail["audit"]] == expected
    assert [e["event_type"] for e in audit["events"]] == expected


@pytest.mark.parametrize("raw", [str(uuid.UUID(int=12345)), "not-a-uuid", "123"])
def test_get_unknown_or_malformed_command_is_404(client: FlaskClient, raw: str) -> None:
    response = client.get(f"/api/commands/{raw}")
    assert response.status_code == 404
    assert json_of(response)["code"] == "NOT_FOUND"
    assert raw in json_of(response)["error"]


# -- listing ----------------------------------------------------------------------------


def test_list_filters_by_test_id_with_pagination_total(client: FlaskClient) -> None:
    test_id = _test_id()
    sent = [json_of(_send(client, SUCCESS, test_id))["command_id"] for _ in range(3)]
    _send(client, SUCCESS, _test_id())  # another test's command: never listed here
    page1 = json_of(client.get("/api/commands", query_string={"test_id": test_id, "page_size": 2}))
    page2 = json_of(
        client.get("/api/commands", query_string={"test_id": test_id, "page_size": 2, "page": 2})
    )
    assert (page1["total"], page2["total"]) == (3, 3)
    assert (page1["page"], page1["page_size"]) == (1, 2)
    assert len(page1["items"]) == 2 and len(page2["items"]) == 1
    listed = [item["command_id"] for item in page1["items"] + page2["items"]]
    assert sorted(listed) == sorted(sent)
    assert all(item["test_id"] == test_id for item in page1["items"] + page2["items"])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page_size": 201}, "page_size"),
        ({"page_size": 0}, "page_size"),
        ({"page": 0}, "page"),
        ({"status": "DONE"}, "status"),
        ({"status": "completed"}, "status"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"sort": "name"}, "sort"),
    ],
)
def test_list_rejects_bad_filters(client: FlaskClient, params: dict[str, Any], field: str) -> None:
    _assert_validation_error(client.get("/api/commands", query_string=params), field)


def test_page_size_200_is_allowed(client: FlaskClient) -> None:
    response = client.get("/api/commands", query_string={"page_size": 200})
    assert response.status_code == 200
    assert json_of(response)["page_size"] == 200


# -- the seeded dataset -----------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded_app(make_migrated_database: Callable[[], str]) -> Iterator[Flask]:
    """A second app on its own database, reset with the seed dataset once."""
    flask_app = create_app(fixtures.testing_settings(make_migrated_database()))
    response = flask_app.test_client().post("/api/testing/reset?seed=true")
    assert response.status_code == 200, json_of(response)
    assert json_of(response)["seeded"] is True
    yield flask_app
    container: Container = flask_app.extensions["container"]
    container.coordinator.shutdown()
    container.close()


@pytest.fixture
def seeded(seeded_app: Flask) -> FlaskClient:
    return seeded_app.test_client()


def _ids(listing: dict[str, Any]) -> list[int]:
    return [int(item["command_id"].rsplit("-", 1)[1]) for item in listing["items"]]


def test_seed_has_one_command_per_status_with_documented_ids(seeded: FlaskClient) -> None:
    listing = json_of(seeded.get("/api/commands", query_string={"page_size": 50}))
    assert listing["total"] == 7
    by_id = {item["command_id"]: item["status"] for item in listing["items"]}
    assert by_id == {SEED_ID.format(seed.number): seed.status for seed in SEED_COMMANDS}
    assert by_id == {
        SEED_ID.format(1): "COMPLETED",
        SEED_ID.format(2): "PENDING",
        SEED_ID.format(3): "IN_PROGRESS",
        SEED_ID.format(4): "FAILED",
        SEED_ID.format(5): "CANCELED",
        SEED_ID.format(6): "IN_TROUBLESHOOTING_QUEUE",
        SEED_ID.format(7): "IN_TROUBLESHOOTING_QUEUE",
    }


def test_stats_count_each_status(seeded: FlaskClient) -> None:
    stats = json_of(seeded.get("/api/stats"))
    assert stats == {
        "pending": 1,
        "in_progress": 1,
        "completed": 1,
        "failed": 1,
        "canceled": 1,
        "in_tsq": 2,
        "total": 7,
    }


def test_stats_keys_on_a_live_database(client: FlaskClient) -> None:
    before = json_of(client.get("/api/stats"))
    assert {"pending", "in_progress", "completed", "failed", "canceled", "in_tsq"} <= before.keys()
    _send(client, SUCCESS, _test_id())
    after = json_of(client.get("/api/stats"))
    assert after["pending"] == before["pending"] + 1


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "COMPLETED"}, [1]),
        ({"status": "IN_TROUBLESHOOTING_QUEUE"}, [7, 6]),
        ({"status": "FAILED"}, [4]),
        ({"domain": "test"}, [7, 6, 5, 4, 3, 2, 1]),
        ({"domain": "other"}, []),
        ({"command_type": "TestCommand", "status": "CANCELED"}, [5]),
        ({"command_type": "Other"}, []),
        ({"created_after": "2026-01-01T00:03:00+00:00"}, [7, 6, 5, 4, 3]),
        ({"created_before": "2026-01-01T00:03:00+00:00"}, [2, 1]),
        (
            {"created_after": "2026-01-01T00:02:00Z", "created_before": "2026-01-01T00:05:00Z"},
            [4, 3, 2],
        ),
        ({"page_size": 3}, [7, 6, 5]),
        ({"page_size": 3, "page": 3}, [1]),
        ({"page_size": 3, "page": 4}, []),
    ],
)
def test_list_filters_on_seed(
    seeded: FlaskClient, params: dict[str, Any], expected: list[int]
) -> None:
    response = seeded.get("/api/commands", query_string=params)
    assert response.status_code == 200, json_of(response)
    assert _ids(json_of(response)) == expected
    if "page" in params or "page_size" in params:
        assert json_of(response)["total"] == 7
    else:
        assert json_of(response)["total"] == len(expected)


def test_seeded_tsq_command_detail(seeded: FlaskClient) -> None:
    detail = json_of(seeded.get(f"/api/commands/{SEED_ID.format(6)}"))
    assert detail["status"] == "IN_TROUBLESHOOTING_QUEUE"
    assert detail["last_error"] == {"code": "INVALID_DATA", "message": "Seeded permanent failure"}
    assert [e["event_type"] for e in detail["audit"]] == ["SENT", "RECEIVED", "MOVED_TO_TSQ"]
    assert detail["audit"][2]["details"]["error_code"] == "INVALID_DATA"
    assert detail["result"] is None
    completed = json_of(seeded.get(f"/api/commands/{SEED_ID.format(1)}"))
    assert completed["result"] == {"status": "ok"}
    assert completed["processed_at"] is not None
    assert completed["last_error"] is None


def test_audit_lists_events_in_order(seeded: FlaskClient) -> None:
    response = seeded.get("/api/audit", query_string={"command_id": SEED_ID.format(7)})
    assert response.status_code == 200
    events = json_of(response)["events"]
    assert [e["event_type"] for e in events] == [
        "SENT", "RECEIVED", "FAILED", "RECEIVED", "FAILED", "RECEIVED", "MOVED_TO_TSQ",
    ]  # fmt: skip
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps)
    assert json_of(response)["command_id"] == SEED_ID.format(7)


def test_audit_requires_command_id(client: FlaskClient) -> None:
    _assert_validation_error(client.get("/api/audit"), "command_id")
    _assert_validation_error(client.get("/api/audit?command_id=%20"), "command_id")


@pytest.mark.parametrize("raw", [str(uuid.UUID(int=999)), "nope"])
def test_audit_of_unknown_command_is_404(client: FlaskClient, raw: str) -> None:
    response = client.get("/api/audit", query_string={"command_id": raw})
    assert response.status_code == 404
    assert json_of(response)["code"] == "NOT_FOUND"


def test_tsq_lists_the_seeded_tsq_commands(seeded: FlaskClient) -> None:
    listing = json_of(seeded.get("/api/tsq"))
    assert listing["total"] == 2
    assert {item["command_id"] for item in listing["items"]} == {
        SEED_ID.format(6),
        SEED_ID.format(7),
    }
    errors = {item["last_error"]["code"] for item in listing["items"]}
    assert errors == {"INVALID_DATA", "TRANSIENT_ERROR"}


# -- config -----------------------------------------------------------------------------


@pytest.fixture
def stored_config(client: FlaskClient) -> Iterator[Callable[[dict[str, Any]], None]]:
    """Store a partial config for one test; the defaults are stored back afterwards."""
    defaults = json_of(client.get("/api/config"))

    def store(partial: dict[str, Any]) -> None:
        merged = {key: {**defaults[key], **partial.get(key, {})} for key in defaults}
        response = client.put("/api/config", json=merged)
        assert response.status_code == 200, json_of(response)

    yield store
    assert client.put("/api/config", json=defaults).status_code == 200


def test_config_defaults_follow_the_seed(client: FlaskClient) -> None:
    config = json_of(client.get("/api/config"))
    assert config == {
        "worker": {
            "visibility_timeout": 30,
            "concurrency": 4,
            "poll_interval": 1.0,
            "batch_size": 10,
        },
        "retry": {
            "max_attempts": 3,
            "base_delay_ms": 1000,
            "max_delay_ms": 60000,
            "backoff_multiplier": 2.0,
        },
    }


def test_config_put_is_persisted(
    client: FlaskClient,
    migrated_database_url: str,
    stored_config: Callable[[dict[str, Any]], None],
) -> None:
    stored_config({"worker": {"concurrency": 7, "visibility_timeout": 12}})
    config = json_of(client.get("/api/config"))
    assert (config["worker"]["concurrency"], config["worker"]["visibility_timeout"]) == (7, 12)
    stored = _scalar(migrated_database_url, "SELECT value FROM app_config WHERE key = 'worker'")
    assert stored["concurrency"] == 7


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"worker": {"concurrency": 0}}, "worker.concurrency"),
        ({"worker": {"visibility_timeout": "soon"}}, "worker.visibility_timeout"),
        ({"retry": {"max_attempts": 0}}, "retry.max_attempts"),
        ({"retry": {"backoff_multiplier": 0.5}}, "retry.backoff_multiplier"),
        ({"retry": {"base_delay_ms": 5000, "max_delay_ms": 1000}}, "retry"),
        ({"retry": {"jitter": True}}, "retry.jitter"),
    ],
)
def test_config_put_rejects_bad_values_naming_the_field(
    client: FlaskClient, change: dict[str, Any], field: str
) -> None:
    before = json_of(client.get("/api/config"))
    body = {key: {**before[key], **change.get(key, {})} for key in before}
    _assert_validation_error(client.put("/api/config", json=body), field)
    assert client.get("/api/config").json == before


# -- bulk -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_server(app: Flask) -> Iterator[LiveServer]:
    server = LiveServer(app).start()
    yield server
    server.stop()


def _read_sse(response: requests.Response) -> list[tuple[str, Any]]:
    """(event, decoded data) of every frame until the server closes the stream."""
    events: list[tuple[str, Any]] = []
    name, data = "message", list[str]()
    for line in response.iter_lines(decode_unicode=True):
        if line == "":
            if data:
                events.append((name, json.loads("\n".join(data))))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
    return events


def _commands_of(url: str, test_id: str) -> list[tuple[str, str, str]]:
    """(behavior type, bus status, correlation id) of each command a test sent."""
    with psycopg.connect(url) as conn:
        return [
            (row[0], row[1], row[2])
            for row in conn.execute(
                "SELECT t.behavior->>'type', c.status, t.correlation_id"
                " FROM test_command t JOIN commandbus.command c USING (command_id)"
                " WHERE t.test_id = %s",
                (test_id,),
            )
        ]


def test_bulk_streams_progress_and_sends_exactly_n(
    live_server: LiveServer, migrated_database_url: str
) -> None:
    test_id = _test_id()
    headers = {"X-Test-Id": test_id, "X-Request-Id": f"bulk-{test_id}"}
    started = requests.post(
        f"{live_server.url}/api/commands/bulk",
        json={"command_type": "TestCommand", "count": 2500, "behavior": SUCCESS},
        headers=headers,
        timeout=10,
    )
    assert started.status_code == 202, started.text
    assert started.json()["total"] == 2500
    task_id = started.json()["task_id"]
    with requests.get(
        f"{live_server.url}/api/tasks/{task_id}/stream", stream=True, timeout=30
    ) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        events = _read_sse(stream)

    names = [name for name, _ in events]
    assert names[0] == "connection_open"
    assert names[-1] == "connection_close"
    task_events = [data for name, data in events if name == "task_event"]
    progress = [e["data"] for e in task_events if e["event_type"] == "progress_update"]
    assert [p["sent"] for p in progress] == [1000, 2000, 2500]
    assert [p["progress"] for p in progress] == [0.4, 0.8, 1.0]
    final = task_events[-1]
    assert final["event_type"] == "task_completed"
    assert final["data"]["result"] == {"sent": 2500, "total": 2500}
    assert events[-1][1]["reason"] == "task_completed"

    rows = _commands_of(migrated_database_url, test_id)
    assert len(rows) == 2500
    assert {row[1] for row in rows} == {"PENDING"}
    assert {row[2] for row in rows} == {f"bulk-{test_id}"}
    queued = _scalar(
        migrated_database_url,
        "SELECT count(*) FROM pgmq.q_test__commands q JOIN test_command t"
        " ON t.command_id = (q.message->>'command_id')::uuid WHERE t.test_id = %s",
        test_id,
    )
    assert queued == 2500


def _wait_for_task(client: FlaskClient, task_id: str) -> dict[str, Any]:
    status = wait_until(
        lambda: (s := json_of(client.get(f"/api/tasks/{task_id}"))) and s["done"] and s,
        timeout=20,
        message=f"bulk task {task_id} to finish",
    )
    return dict(status)


def test_bulk_mix_sends_each_share(client: FlaskClient, migrated_database_url: str) -> None:
    test_id = _test_id()
    response = client.post(
        "/api/commands/bulk",
        json={
            "command_type": "TestCommand",
            "mix": [
                {"behavior": SUCCESS, "count": 3},
                {"behavior": {"type": "fail_permanent", "error_code": "X"}, "count": 2},
                {
                    "behavior": {"type": "fail_transient_then_succeed", "transient_failures": 2},
                    "count": 1,
                },
            ],
        },
        headers={"X-Test-Id": test_id},
    )
    assert response.status_code == 202, json_of(response)
    assert json_of(response)["total"] == 6
    status = _wait_for_task(client, json_of(response)["task_id"])
    assert status["last_event"]["event_type"] == "task_completed"
    types = sorted(row[0] for row in _commands_of(migrated_database_url, test_id))
    assert types == ["fail_permanent"] * 2 + ["fail_transient_then_succeed"] + ["success"] * 3


def test_bulk_share_reaching_max_attempts_is_sent_with_a_tsq_note(
    client: FlaskClient, migrated_database_url: str
) -> None:
    test_id = _test_id()
    exhausting = {"type": "fail_transient_then_succeed", "transient_failures": 3}
    response = client.post(
        "/api/commands/bulk",
        json={
            "command_type": "TestCommand",
            "mix": [{"behavior": SUCCESS, "count": 1}, {"behavior": exhausting, "count": 2}],
        },
        headers={"X-Test-Id": test_id},
    )
    assert response.status_code == 202, json_of(response)
    accepted = json_of(response)
    (note,) = accepted["notes"]
    assert note["field"] == "mix.1.behavior"
    assert note["count"] == 2
    assert note["expected"] == "troubleshooting_queue"
    assert note["operator_retries"] == 1
    assert "max_attempts 3" in note["note"]
    status = _wait_for_task(client, accepted["task_id"])
    assert status["last_event"]["event_type"] == "task_completed"
    assert len(_commands_of(migrated_database_url, test_id)) == 3
    plain = client.post(
        "/api/commands/bulk",
        json={"command_type": "TestCommand", "count": 1, "behavior": SUCCESS},
        headers={"X-Test-Id": _test_id()},
    )
    assert "notes" not in json_of(plain)
    # Finished here: a task still sending would change the next test's row counts.
    _wait_for_task(client, json_of(plain)["task_id"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"command_type": "TestCommand", "count": 0, "behavior": SUCCESS}, "count"),
        ({"command_type": "TestCommand", "count": 100_001, "behavior": SUCCESS}, "count"),
        ({"command_type": "TestCommand", "count": 5}, "body"),
        ({"command_type": "TestCommand", "behavior": SUCCESS}, "body"),
        ({"command_type": "TestCommand", "mix": []}, "mix"),
        (
            {"command_type": "TestCommand", "mix": [{"behavior": SUCCESS, "count": 0}]},
            "mix.0.count",
        ),
        (
            {
                "command_type": "TestCommand",
                "count": 2,
                "behavior": SUCCESS,
                "mix": [{"behavior": SUCCESS, "count": 1}],
            },
            "body",
        ),
        (
            {
                "command_type": "TestCommand",
                "mix": [
                    {"behavior": SUCCESS, "count": 1},
                    {
                        "behavior": {
                            "type": "fail_transient_then_succeed",
                            "transient_failures": 101,
                        },
                        "count": 1,
                    },
                ],
            },
            "mix.1.behavior.transient_failures",
        ),
        (
            {
                "command_type": "TestCommand",
                "count": 1,
                "behavior": {"type": "fail_transient_then_succeed", "transient_failures": -1},
            },
            "behavior.transient_failures",
        ),
        ({"command_type": "Nope", "count": 1, "behavior": SUCCESS}, "command_type"),
    ],
)
def test_bulk_rejects_bad_requests_before_sending(
    client: FlaskClient, migrated_database_url: str, body: dict[str, Any], field: str
) -> None:
    test_id = _test_id()
    before = _row_counts(migrated_database_url)
    _assert_validation_error(
        client.post("/api/commands/bulk", json=body, headers={"X-Test-Id": test_id}), field
    )
    assert _row_counts(migrated_database_url) == before
