"""The testing reset: only in testing mode, a fresh schema every time, exact seed, one at a time."""

from __future__ import annotations

import secrets
import subprocess
import threading
from collections import Counter
from typing import Any

import psycopg
import pytest
import requests

from backend.config import Settings
from backend.services.command_service import STATUS_KEYS
from backend.services.master_data import load_setup
from backend.services.migrate_command import migrate
from backend.services.seed_data import SEED_COMMANDS
from backend.utils.reset_lock import ResetLock
from tests.fixtures.backend import LiveServer, app_on, wait_until
from tests.fixtures.backend import testing_settings as settings_for

RESET = "/api/testing/reset"
ERROR_KEYS = {"error", "code", "details", "correlationId"}


# --- comparing a database with a freshly migrated one ------------------------------------------

_FACTS = {
    "extensions": "SELECT extname, extversion FROM pg_extension ORDER BY extname",
    "queues": "SELECT queue_name, is_partitioned, is_unlogged FROM pgmq.meta ORDER BY queue_name",
    "alembic_version": "SELECT version_num FROM alembic_version ORDER BY version_num",
    "command_types": "SELECT id, domain, name, description, default_behavior::text"
    " FROM command_type ORDER BY id",
    "rows": "SELECT (SELECT count(*) FROM commandbus.command), (SELECT count(*) FROM"
    " commandbus.audit), (SELECT count(*) FROM test_command), (SELECT count(*) FROM"
    " app_config), (SELECT count(*) FROM pgmq.q_test__commands)",
}


def schema_fingerprint(embedded_pg, url: str) -> dict[str, Any]:
    """The schema as pg_dump prints it, plus the rows migrations and master-data sync write."""
    dump = subprocess.run(
        [str(embedded_pg.bindir / "pg_dump"), "--schema-only", "--no-owner", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    # Newer pg_dump releases frame the dump with a random \restrict key; it is not schema.
    lines = [line for line in dump.splitlines() if not line.startswith(("\\restrict", "\\unres"))]
    facts: dict[str, Any] = {"schema": lines}
    with psycopg.connect(url) as conn:
        for name, query in _FACTS.items():
            facts[name] = conn.execute(query).fetchall()
    return facts


@pytest.fixture(scope="module")
def fresh_fingerprint(embedded_pg, make_database) -> dict[str, Any]:
    """Fingerprint of a brand-new database after `python -m backend migrate`."""
    url = make_database()
    assert migrate(Settings(database_url=url)) == 0
    return schema_fingerprint(embedded_pg, url)


def assert_like_fresh(embedded_pg, url: str, fresh: dict[str, Any]) -> None:
    actual = schema_fingerprint(embedded_pg, url)
    for key, expected in fresh.items():
        assert actual[key] == expected, f"{key} differs from a freshly migrated database"


def assert_error_shape(response, status: int, code: str) -> dict[str, Any]:
    """Check the shared error shape of a Flask test response or a `requests` response."""
    body = response.json() if callable(response.json) else response.json
    assert response.status_code == status, body
    assert set(body) == ERROR_KEYS, body
    assert body["code"] == code
    assert body["correlationId"] == response.headers["X-Request-Id"]
    return body


# --- availability and shape -------------------------------------------------------------------


def test_testing_endpoints_do_not_exist_outside_testing_mode(migrated_database_url):
    settings = Settings(database_url=migrated_database_url, environment="development")
    with app_on(settings) as app:
        response = app.test_client().post(RESET)
    body = assert_error_shape(response, 404, "NOT_FOUND")
    assert body["error"]


def test_reset_exists_in_testing_mode(client):
    assert client.post(RESET).status_code == 200


@pytest.mark.parametrize(
    ("query", "seeded"),
    [("", False), ("?seed=false", False), ("?seed=true", True), ("?seed=TRUE", True)],
)
def test_reset_response_shape(client, query, seeded):
    response = client.post(RESET + query)
    assert response.status_code == 200
    assert response.json == {"status": "complete", "mode": "testing", "seeded": seeded}


def test_seed_must_be_true_or_false(client):
    response = client.post(RESET + "?seed=maybe")
    body = assert_error_shape(response, 400, "VALIDATION_ERROR")
    assert body["details"]["field"] == "seed"
    assert "seed" in body["error"]
    assert "maybe" in body["details"]["reason"]


# --- what a reset leaves behind ---------------------------------------------------------------


def test_reset_is_idempotent_and_leaves_a_freshly_migrated_schema(
    client, embedded_pg, migrated_database_url, fresh_fingerprint
):
    for _ in range(2):
        assert client.post(RESET).status_code == 200
        assert_like_fresh(embedded_pg, migrated_database_url, fresh_fingerprint)
        assert client.get("/api/health/readyz").status_code == 200


def test_reset_removes_data_created_before_it(
    client, embedded_pg, migrated_database_url, fresh_fingerprint
):
    name = f"Doomed_{secrets.token_hex(4)}"
    created = client.post("/api/command-types", json={"domain": "test", "name": name})
    assert created.status_code == 201, created.json
    sent = client.post(
        "/api/commands", json={"command_type": name, "behavior": {"type": "success"}}
    )
    assert sent.status_code == 201, sent.json
    assert client.get("/api/stats").json["total"] >= 1

    assert client.post(RESET).status_code == 200

    assert client.get(f"/api/command-types/{created.json['id']}").status_code == 404
    assert client.get(f"/api/commands/{sent.json['command_id']}").status_code == 404
    assert client.get("/api/stats").json["total"] == 0
    names = [(t["domain"], t["name"]) for t in client.get("/api/command-types").json]
    assert names == [(t["domain"], t["name"]) for t in load_setup()]
    assert_like_fresh(embedded_pg, migrated_database_url, fresh_fingerprint)


def test_reset_without_seed_removes_the_seed(client):
    assert client.post(RESET + "?seed=true").status_code == 200
    assert client.get("/api/stats").json["total"] == len(SEED_COMMANDS)
    assert client.post(RESET + "?seed=false").status_code == 200
    assert client.get("/api/stats").json["total"] == 0


def test_seed_loads_exactly_the_documented_dataset(client):
    # Twice: a second seeded reset must not add to the first.
    for _ in range(2):
        assert client.post(RESET + "?seed=true").json["seeded"] is True
    by_status = Counter(seed.status for seed in SEED_COMMANDS)
    assert set(by_status) == set(STATUS_KEYS), "the seed must cover every status"

    stats = client.get("/api/stats").json
    assert stats == {
        **{key: by_status[status] for status, key in STATUS_KEYS.items()},
        "total": len(SEED_COMMANDS),
    }
    for status in STATUS_KEYS:
        listed = client.get("/api/commands", query_string={"status": status}).json
        expected_ids = {str(s.command_id) for s in SEED_COMMANDS if s.status == status}
        assert listed["total"] == by_status[status], status
        assert {item["command_id"] for item in listed["items"]} == expected_ids
        assert all(item["status"] == status for item in listed["items"])


@pytest.mark.parametrize("seed", SEED_COMMANDS, ids=lambda s: f"{s.number}-{s.status}")
def test_seeded_command_detail_matches_its_definition(client, seed):
    assert client.post(RESET + "?seed=true").status_code == 200
    response = client.get(f"/api/commands/{seed.command_id}")
    assert response.status_code == 200, response.json
    detail = response.json
    assert detail["status"] == seed.status
    assert detail["attempts"] == seed.attempts
    assert detail["behavior"] == seed.behavior
    assert detail["result"] == seed.result
    assert [event["event_type"] for event in detail["audit"]] == list(seed.audit)
    if seed.error:
        assert detail["last_error"] == {"code": seed.error[1], "message": seed.error[2]}
    else:
        assert detail["last_error"] is None


# --- one reset at a time ----------------------------------------------------------------------


def test_concurrent_resets_one_runs_the_rest_get_503(
    make_migrated_database, embedded_pg, fresh_fingerprint
):
    url = make_migrated_database()
    callers = 10
    with app_on(settings_for(url)) as app:
        server = LiveServer(app, threads=callers + 2).start()
        barrier = threading.Barrier(callers)
        responses: list[requests.Response] = []
        errors: list[BaseException] = []

        def reset() -> None:
            try:
                barrier.wait(timeout=10)
                responses.append(requests.post(server.url + RESET, timeout=30))
            except BaseException as exc:
                errors.append(exc)

        # Hold a lock the reset's DROP TABLE needs: the reset that wins the race stays inside
        # its transaction until every other caller has had its answer, so they all overlap.
        blocker = psycopg.connect(url)
        try:
            blocker.execute("LOCK TABLE command_type IN ACCESS SHARE MODE")
            threads = [threading.Thread(target=reset) for _ in range(callers)]
            for thread in threads:
                thread.start()
            wait_until(
                lambda: len(responses) + len(errors) >= callers - 1,
                timeout=15,
                message="all but one concurrent reset to be refused",
            )
        finally:
            blocker.close()  # ends the transaction: the running reset proceeds
        for thread in threads:
            thread.join(timeout=30)
        try:
            assert not errors, errors
            assert len(responses) == callers
            statuses = Counter(r.status_code for r in responses)
            assert set(statuses) <= {200, 503}, statuses
            assert statuses[200] == 1, statuses  # at least one, and no second in the window
            assert statuses[503] == callers - 1, statuses
            for response in responses:
                if response.status_code == 503:
                    assert response.headers["Retry-After"] == "5"
                    body = assert_error_shape(response, 503, "BUSY")
                    assert body["details"] == {"retry_after": 5}
                    assert "reset is already in progress" in body["error"]
                else:
                    assert response.json()["status"] == "complete"
            assert requests.get(server.url + "/api/health/readyz", timeout=5).status_code == 200
            # The lock is free again: a later reset runs.
            assert requests.post(server.url + RESET, timeout=30).status_code == 200
        finally:
            server.stop()
    assert_like_fresh(embedded_pg, url, fresh_fingerprint)


def test_reset_lock_refuses_a_second_holder_until_released():
    lock = ResetLock()
    assert lock.is_resetting() is False
    assert lock.acquire_reset() is True
    assert lock.is_resetting() is True
    assert lock.acquire_reset() is False  # never blocks, never re-enters

    from_other_thread: list[bool] = []
    other = threading.Thread(target=lambda: from_other_thread.append(lock.acquire_reset()))
    other.start()
    other.join(timeout=5)
    assert from_other_thread == [False]

    lock.release_reset()
    assert lock.is_resetting() is False
    assert lock.acquire_reset() is True
    lock.release_reset()


def test_reset_lock_release_without_acquire_is_an_error():
    with pytest.raises(RuntimeError):
        ResetLock().release_reset()
