"""The database goes away under a running app: 503 naming it, with Retry-After, at once (not
after the pool's 5 s checkout timeout); back to normal when it returns."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from flask.testing import FlaskClient

from tests.backend.consistency import assert_consistent, assert_error_shape, no_unhandled_errors
from tests.fixtures.backend import app_on, testing_settings, wait_until

CHECKOUT_TIMEOUT = 5.0  # backend.db.Database's default: a 503 must come well before it


@contextmanager
def database_down(url: str) -> Iterator[str]:
    """Refuse new connections to the database and end the open ones; yields its name."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        try:
            yield name
        finally:
            conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')


@pytest.fixture
def outage_client(make_migrated_database: Callable[[], str]) -> Iterator[tuple[FlaskClient, str]]:
    url = make_migrated_database()
    with app_on(testing_settings(url)) as app:
        yield app.test_client(), url


SEND = {"command_type": "TestCommand", "behavior": {"type": "success"}}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/commands", SEND),
        ("get", "/api/stats", None),
        ("get", "/api/commands", None),
        ("get", "/api/command-types", None),
        ("get", "/api/config", None),
        ("post", "/api/commands/bulk", {**SEND, "count": 3}),
        ("get", "/api/workers", None),
    ],
)
def test_database_down_is_503_naming_it_at_once(
    outage_client: tuple[FlaskClient, str], method: str, path: str, body: dict | None
) -> None:
    client, url = outage_client
    assert client.get("/api/stats").status_code == 200  # the pool holds a live connection
    with no_unhandled_errors(), database_down(url) as name:
        for _ in range(2):  # the first request finds the outage, the second remembers it
            started = time.perf_counter()
            response = getattr(client, method)(path, json=body)
            elapsed = time.perf_counter() - started
            error = assert_error_shape(response, 503, "DATABASE_UNAVAILABLE")
            assert name in error["error"] and name in error["details"]["database"]
            assert error["details"]["reason"]
            assert elapsed < CHECKOUT_TIMEOUT / 2, f"503 after {elapsed:.2f}s"
        ready = client.get("/api/health/readyz")
        assert ready.status_code == 503
    # Back: requests succeed again without a restart (retrying as Retry-After says).
    wait_until(
        lambda: client.post("/api/commands", json=SEND).status_code == 201,
        timeout=15,
        interval=0.5,
        message="a send to succeed once the database is back",
    )
    assert client.get("/api/stats").status_code == 200
    assert_consistent(url)


def test_database_down_from_the_start_is_503(make_database) -> None:
    url = make_database()
    parts = urlsplit(url)
    missing = urlunsplit(parts._replace(path="/no_such_database_here"))
    with app_on(testing_settings(missing)) as app, no_unhandled_errors():
        response = app.test_client().get("/api/stats")
        error = assert_error_shape(response, 503, "DATABASE_UNAVAILABLE")
        assert "no_such_database_here" in error["details"]["database"]
        assert "password" not in error["error"].lower() or parts.password not in error["error"]
        assert app.test_client().get("/api/health/healthz").status_code == 200
