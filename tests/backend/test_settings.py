"""`Settings.from_env`: fail fast with messages naming the variable; defaults per environment."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from backend.config import ConfigError, Settings
from tests.fixtures.backend import REPO_ROOT

URL = "postgresql://postgres:secret@127.0.0.1:5432/app"


@pytest.mark.parametrize(
    ("env", "variable", "hint"),
    [
        ({}, "DATABASE_URL", "is not set"),
        ({"DATABASE_URL": "   "}, "DATABASE_URL", "is not set"),
        ({"DATABASE_URL": "mysql://root@127.0.0.1/app"}, "DATABASE_URL", "postgresql://"),
        ({"DATABASE_URL": "postgresql://postgres@127.0.0.1:5432"}, "DATABASE_URL", "database"),
        ({"DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/"}, "DATABASE_URL", "database"),
        ({"DATABASE_URL": URL, "FLASK_ENV": "staging"}, "FLASK_ENV", "staging"),
        (
            {"DATABASE_URL": URL, "SSE_HEARTBEAT_INTERVAL": "-1"},
            "SSE_HEARTBEAT_INTERVAL",
            "greater than 0",
        ),
        (
            {"DATABASE_URL": URL, "SSE_HEARTBEAT_INTERVAL": "0"},
            "SSE_HEARTBEAT_INTERVAL",
            "greater than 0",
        ),
        (
            {"DATABASE_URL": URL, "SSE_HEARTBEAT_INTERVAL": "soon"},
            "SSE_HEARTBEAT_INTERVAL",
            "number",
        ),
        ({"DATABASE_URL": URL, "LOG_LEVEL": "LOUD"}, "LOG_LEVEL", "LOUD"),
    ],
    ids=[
        "missing-url",
        "blank-url",
        "mysql-url",
        "no-db-name",
        "empty-db-name",
        "bad-flask-env",
        "negative-heartbeat",
        "zero-heartbeat",
        "non-numeric-heartbeat",
        "bad-log-level",
    ],
)
def test_bad_environment_raises_config_error_naming_the_variable(env, variable, hint):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    message = str(caught.value)
    assert variable in message
    assert hint in message


@pytest.mark.parametrize(
    ("flask_env", "environment", "heartbeat"),
    [
        (None, "development", 5.0),
        ("development", "development", 5.0),
        ("testing", "testing", 5.0),
        ("production", "production", 30.0),
    ],
)
def test_heartbeat_default_depends_on_environment(flask_env, environment, heartbeat):
    env = {"DATABASE_URL": URL}
    if flask_env is not None:
        env["FLASK_ENV"] = flask_env
    settings = Settings.from_env(env)
    assert settings.environment == environment
    assert settings.sse_heartbeat_interval == heartbeat
    assert settings.is_testing is (environment == "testing")


def test_explicit_heartbeat_overrides_the_default():
    env = {"DATABASE_URL": URL, "FLASK_ENV": "production", "SSE_HEARTBEAT_INTERVAL": "0.25"}
    assert Settings.from_env(env).sse_heartbeat_interval == 0.25


def test_valid_environment_is_read_into_typed_settings():
    settings = Settings.from_env(
        {"DATABASE_URL": f" {URL} ", "TASK_POOL_SIZE": "8", "LOG_LEVEL": "debug"}
    )
    assert settings.database_url == URL
    assert settings.task_pool_size == 8
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize("variable", ["TASK_POOL_SIZE", "DB_POOL_MAX_SIZE", "WAITRESS_THREADS"])
def test_count_settings_below_one_are_rejected(variable):
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({"DATABASE_URL": URL, variable: "0.5"})


def test_postgres_scheme_alias_is_accepted():
    url = "postgres://postgres@127.0.0.1:5432/app"
    assert Settings.from_env({"DATABASE_URL": url}).database_url == url


def test_serve_without_database_url_exits_2_with_one_clear_line():
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "backend", "serve", "--port", "0"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "DATABASE_URL" in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
