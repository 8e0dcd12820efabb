"""Command types over HTTP, and the master-data sync that keeps them in step with the setup file."""

from __future__ import annotations

import json
import secrets

import psycopg
import pytest

from backend.services.master_data import (
    SETUP_FILE,
    SyncResult,
    load_setup,
    sync_master_data_from_setup,
)
from backend.services.migration_service import upgrade_to_head

TYPES = "/api/command-types"


def unique_name(prefix: str = "Type") -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


def create_type(client, **fields) -> dict:
    body = {"domain": "test", "name": unique_name(), **fields}
    response = client.post(TYPES, json=body)
    assert response.status_code == 201, response.json
    return response.json


# --- the API ----------------------------------------------------------------------------------


def test_list_contains_the_synced_test_command(client):
    response = client.get(TYPES)
    assert response.status_code == 200
    synced = [t for t in response.json if (t["domain"], t["name"]) == ("test", "TestCommand")]
    assert len(synced) == 1
    setup = next(e for e in load_setup() if e["name"] == "TestCommand")
    assert synced[0]["description"] == setup["description"]
    assert synced[0]["default_behavior"] == setup["default_behavior"]


def test_create_returns_201_with_the_stored_type(client):
    name = unique_name()
    response = client.post(
        TYPES,
        json={
            "domain": "test",
            "name": name,
            "description": "made by a test",
            "default_behavior": {"type": "fail_permanent"},
        },
    )
    assert response.status_code == 201, response.json
    created = response.json
    assert isinstance(created["id"], int)
    assert (created["domain"], created["name"]) == ("test", name)
    assert created["description"] == "made by a test"
    assert created["default_behavior"] == {"type": "fail_permanent"}
    assert created["created_at"] and created["updated_at"]
    assert created in client.get(TYPES).json


def test_create_fills_in_defaults(client):
    created = create_type(client)
    assert created["description"] == ""
    assert created["default_behavior"] == {"type": "success"}


def test_duplicate_is_409(client):
    created = create_type(client)
    response = client.post(TYPES, json={"domain": "test", "name": created["name"]})
    assert response.status_code == 409
    assert response.json["code"] == "ALREADY_EXISTS"
    assert f"test/{created['name']}" in response.json["error"]


def test_same_name_in_another_domain_is_not_a_duplicate(client):
    created = create_type(client)
    other = client.post(TYPES, json={"domain": "other", "name": created["name"]})
    assert other.status_code == 201, other.json


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"domain": "Bad-Domain", "name": "Fine"}, "domain"),
        ({"domain": "9starts_with_digit", "name": "Fine"}, "domain"),
        ({"domain": "test"}, "name"),
        ({"domain": "test", "name": ""}, "name"),
        ({"domain": "test", "name": "Fine", "colour": "blue"}, "colour"),
        ({"domain": "test", "name": "Fine", "default_behavior": "success"}, "default_behavior"),
    ],
    ids=["domain-pattern", "domain-digit", "missing-name", "empty-name", "extra-field", "bad-type"],
)
def test_invalid_body_is_400_naming_the_field(client, body, field):
    before = len(client.get(TYPES).json)
    response = client.post(TYPES, json=body)
    assert response.status_code == 400, response.json
    assert response.json["code"] == "VALIDATION_ERROR"
    assert response.json["details"]["field"] == field
    assert response.json["error"].startswith(f"Invalid {field}: ")
    assert len(client.get(TYPES).json) == before


def test_get_by_id(client):
    created = create_type(client)
    response = client.get(f"{TYPES}/{created['id']}")
    assert response.status_code == 200
    assert response.json == created


def test_get_absent_is_404(client):
    response = client.get(f"{TYPES}/2147483000")
    assert response.status_code == 404
    assert response.json["code"] == "NOT_FOUND"


def test_delete_is_204_then_gone(client):
    created = create_type(client)
    response = client.delete(f"{TYPES}/{created['id']}")
    assert response.status_code == 204
    assert response.get_data() == b""
    assert client.get(f"{TYPES}/{created['id']}").status_code == 404
    again = client.delete(f"{TYPES}/{created['id']}")
    assert again.status_code == 404
    assert again.json["code"] == "NOT_FOUND"


def test_delete_of_a_type_in_use_is_409_type_in_use(client):
    created = create_type(client)
    sent = client.post(
        "/api/commands", json={"command_type": created["name"], "behavior": {"type": "success"}}
    )
    assert sent.status_code == 201, sent.json

    response = client.delete(f"{TYPES}/{created['id']}")

    assert response.status_code == 409
    assert response.json["code"] == "TYPE_IN_USE"
    assert response.json["error"] == (
        f"Cannot delete Command type {created['id']} because it is used by 1 test command(s)"
    )
    assert client.get(f"{TYPES}/{created['id']}").status_code == 200  # still there


# --- master data sync -------------------------------------------------------------------------


@pytest.fixture
def unsynced_url(fresh_database_url) -> str:
    """A database at head whose master data was never synced."""
    upgrade_to_head(fresh_database_url)
    return fresh_database_url


def sync(url: str, path=SETUP_FILE) -> SyncResult:
    with psycopg.connect(url) as conn:
        return sync_master_data_from_setup(conn, path)


def stored_types(url: str) -> dict[tuple[str, str], tuple[str, object]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT domain, name, description, default_behavior FROM command_type"
        ).fetchall()
    return {(d, n): (desc, behavior) for d, n, desc, behavior in rows}


def write_setup(tmp_path, entries) -> object:
    path = tmp_path / "command_types.json"
    path.write_text(json.dumps({"command_types": entries}))
    return path


def test_sync_adds_then_is_idempotent(unsynced_url):
    entries = load_setup()
    assert sync(unsynced_url) == SyncResult(added=len(entries), updated=0, unchanged=0)
    before = stored_types(unsynced_url)
    assert sync(unsynced_url) == SyncResult(added=0, updated=0, unchanged=len(entries))
    assert stored_types(unsynced_url) == before
    assert set(before) == {(e["domain"], e["name"]) for e in entries}


def test_sync_updates_a_changed_description(unsynced_url, tmp_path):
    sync(unsynced_url)
    changed = [{**e, "description": f"{e['description']} (v2)"} for e in load_setup()]
    assert sync(unsynced_url, write_setup(tmp_path, changed)) == SyncResult(
        added=0, updated=len(changed), unchanged=0
    )
    stored = stored_types(unsynced_url)
    for entry in changed:
        assert stored[(entry["domain"], entry["name"])][0] == entry["description"]


def test_sync_never_deletes(unsynced_url, tmp_path):
    sync(unsynced_url)
    with psycopg.connect(unsynced_url) as conn:
        conn.execute("INSERT INTO command_type (domain, name) VALUES ('test', 'HandMade')")
    before = stored_types(unsynced_url)

    assert sync(unsynced_url, write_setup(tmp_path, [])) == SyncResult(0, 0, 0)
    assert sync(unsynced_url) == SyncResult(added=0, updated=0, unchanged=len(load_setup()))
    assert stored_types(unsynced_url) == before
    assert ("test", "HandMade") in before
