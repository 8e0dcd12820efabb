"""Liveness and readiness: /healthz, /readyz and the pending-migration check behind it."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from alembic import command

from backend.config import Settings
from backend.services.migrate_command import migrate
from backend.services.migration_service import (
    MIGRATIONS_DIR,
    alembic_config,
    get_pending_migrations,
    head_revisions,
)
from orchestrator.embedded_postgres import EmbeddedPostgres
from tests.fixtures.backend import app_on
from tests.fixtures.backend import testing_settings as settings_for

READYZ = "/api/health/readyz"
HEALTHZ = "/api/health/healthz"


def upgraded_to(url: str, revision: str | None) -> str:
    """`url` after `alembic upgrade <revision>` (None: left empty)."""
    if revision is not None:
        command.upgrade(alembic_config(url), revision)
    return url


def pending_on(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return get_pending_migrations(conn)


@pytest.fixture(scope="module")
def all_revisions(make_database: Callable[[], str]) -> list[str]:
    """Every revision, oldest first, as an empty database reports them pending."""
    return pending_on(make_database())


# --- liveness and readiness -----------------------------------------------------------------


def test_healthz_is_200_alive(client):
    response = client.get(HEALTHZ)
    assert response.status_code == 200
    assert response.json == {"status": "alive"}


def test_readyz_is_200_with_every_check_passing(client):
    response = client.get(READYZ)
    assert response.status_code == 200, response.json
    assert response.json == {
        "status": "ready",
        "failed": [],
        "checks": {
            "shutting_down": {"ok": True},
            "database": {"ok": True},
            "migrations": {"ok": True, "pending": []},
        },
    }


def test_readyz_is_503_naming_the_pending_migration(fresh_database_url, all_revisions):
    upgraded_to(fresh_database_url, "0002")
    with app_on(settings_for(fresh_database_url)) as app:
        response = app.test_client().get(READYZ)
    assert response.status_code == 503, response.json
    body: Any = response.json
    assert body["status"] == "not_ready"
    assert body["failed"] == ["migrations"]
    assert body["checks"]["database"] == {"ok": True}
    expected = all_revisions[all_revisions.index("0002") + 1 :]
    assert expected, "there must be migrations after 0002 for this test to mean anything"
    assert body["checks"]["migrations"] == {"ok": False, "pending": expected}


def test_readyz_is_503_naming_the_database_once_it_stops_while_healthz_stays_200():
    password = secrets.token_hex(8)
    with EmbeddedPostgres(password=password, run_id=f"readyz-{secrets.token_hex(3)}") as server:
        url = server.create_database("app")
        assert migrate(Settings(database_url=url)) == 0
        with app_on(settings_for(url)) as app:
            client = app.test_client()
            assert client.get(READYZ).status_code == 200  # the app is fine while it runs

            server.stop()

            response = client.get(READYZ)
            assert response.status_code == 503, response.json
            body: Any = response.json
            assert body["status"] == "not_ready"
            assert body["failed"] == ["database"]
            assert body["checks"]["database"]["ok"] is False
            assert body["checks"]["database"]["detail"]  # says why, e.g. a pool timeout
            assert body["checks"]["migrations"]["ok"] is False
            healthz = client.get(HEALTHZ)
            assert healthz.status_code == 200
            assert healthz.json == {"status": "alive"}


def test_readyz_is_503_shutting_down_once_shutdown_starts(make_migrated_database):
    with app_on(settings_for(make_migrated_database())) as app:
        client = app.test_client()
        assert client.get(READYZ).status_code == 200
        app.extensions["container"].coordinator.shutdown()
        response = client.get(READYZ)
        assert client.get(HEALTHZ).status_code == 200
    body: Any = response.json
    assert response.status_code == 503, body
    assert body["status"] == "not_ready"
    assert body["failed"] == ["shutting_down"]
    assert body["checks"]["shutting_down"] == {
        "ok": False,
        "detail": "shutdown in progress",
    }


# --- get_pending_migrations -------------------------------------------------------------------


def test_empty_database_has_every_migration_pending_oldest_first(all_revisions):
    versions = sorted(p.stem.split("_")[0] for p in (MIGRATIONS_DIR / "versions").glob("*.py"))
    assert all_revisions == versions
    assert all_revisions[0] == "0001"
    assert all_revisions[-1] in head_revisions()


@pytest.mark.parametrize("revision", ["0001", "0002"])
def test_partly_migrated_database_has_the_later_migrations_pending(
    fresh_database_url, all_revisions, revision
):
    pending = pending_on(upgraded_to(fresh_database_url, revision))
    assert pending == all_revisions[all_revisions.index(revision) + 1 :]


def test_database_at_head_has_nothing_pending(fresh_database_url):
    assert pending_on(upgraded_to(fresh_database_url, "head")) == []


def test_pending_migrations_do_not_change_the_database(fresh_database_url, all_revisions):
    upgraded_to(fresh_database_url, "0001")
    assert pending_on(fresh_database_url) == pending_on(fresh_database_url)
    with psycopg.connect(fresh_database_url) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert row == ("0001",)
