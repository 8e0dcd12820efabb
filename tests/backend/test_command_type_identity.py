"""Command types are (domain, name): a same-named type in another domain can't hijack sends."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from flask.testing import FlaskClient

from tests.backend.consistency import assert_consistent, assert_error_shape, no_unhandled_errors
from tests.fixtures.backend import app_on, testing_settings

TYPES = "/api/command-types"


@pytest.fixture
def own_client(make_migrated_database: Callable[[], str]) -> Iterator[tuple[FlaskClient, str]]:
    """A database of its own: these tests create a second `TestCommand`."""
    url = make_migrated_database()
    with app_on(testing_settings(url)) as app:
        yield app.test_client(), url


def _send(client: FlaskClient, name: str, domain: str | None = None, bulk: bool = False):
    body: dict = {"command_type": name, "behavior": {"type": "success"}}
    if domain is not None:
        body["domain"] = domain
    if bulk:
        body["count"] = 2
    return client.post("/api/commands/bulk" if bulk else "/api/commands", json=body)


@pytest.mark.parametrize("bulk", [False, True], ids=["send", "bulk"])
def test_a_same_named_type_makes_the_bare_name_ambiguous(
    own_client: tuple[FlaskClient, str], bulk: bool
) -> None:
    client, url = own_client
    created = client.post(TYPES, json={"domain": "aaa", "name": "TestCommand"})
    assert created.status_code == 201, created.json
    with no_unhandled_errors():
        refused = _send(client, "TestCommand", bulk=bulk)
    error = assert_error_shape(refused, 409, "AMBIGUOUS_COMMAND_TYPE")
    assert error["details"] == {"command_type": "TestCommand", "domains": ["aaa", "test"]}
    assert "aaa, test" in error["error"] and '"domain"' in error["error"]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM test_command").fetchone() == (0,)

    # Naming the domain picks the type; the workers' domain stays reachable.
    sent = _send(client, "TestCommand", domain="test", bulk=bulk)
    assert sent.status_code in (201, 202), sent.json
    if not bulk:
        assert sent.json["domain"] == "test"
        detail = client.get(f"/api/commands/{sent.json['command_id']}").json
        assert (detail["domain"], detail["command_type"]) == ("test", "TestCommand")

    # The extra type is unused, so it can be deleted; then the bare name works again.
    assert client.delete(f"{TYPES}/{created.json['id']}").status_code == 204
    assert _send(client, "TestCommand").status_code == 201
    assert_consistent(url)


def test_an_unknown_domain_or_name_is_400(own_client: tuple[FlaskClient, str]) -> None:
    client, _url = own_client
    error = assert_error_shape(_send(client, "TestCommand", "nope"), 400, "VALIDATION_ERROR")
    assert error["details"]["field"] == "command_type"
    assert "'nope'" in error["details"]["reason"]
    missing = f"Missing{uuid.uuid4().hex[:6]}"
    assert_error_shape(_send(client, missing), 400, "VALIDATION_ERROR")


def test_a_unique_bare_name_in_another_domain_still_resolves(
    own_client: tuple[FlaskClient, str],
) -> None:
    client, _url = own_client
    name = f"Only{uuid.uuid4().hex[:6]}"
    assert client.post(TYPES, json={"domain": "other", "name": name}).status_code == 201
    sent = _send(client, name)
    assert sent.status_code == 201 and sent.json["domain"] == "other"
