"""Backend settings: read once from the environment, validated at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

Environment = Literal["development", "testing", "production"]
ENVIRONMENTS: tuple[Environment, ...] = ("development", "testing", "production")
# Threads kept free of event streams, for health probes and API calls.
RESERVED_THREADS = 8


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names it and says how to fix it."""


@dataclass(frozen=True)
class Settings:
    """Everything the backend process needs to know, typed and checked."""

    database_url: str
    environment: Environment = "development"
    sse_heartbeat_interval: float = 5.0
    task_stream_idle_interval: float = 5.0
    shutdown_timeout: float = 10.0
    task_pool_size: int = 4
    task_retention_seconds: float = 300.0
    db_pool_max_size: int = 20
    log_level: str = "INFO"
    waitress_threads: int = 32
    version: str = "0.1.0"
    git_commit: str = "unknown"
    worker_stale_after: float = 10.0
    max_request_bytes: int = 1_048_576
    waitress_connection_limit: int = 500
    waitress_channel_timeout: float = 60.0
    sse_stream_limit: int | None = None  # None: waitress_threads - RESERVED_THREADS
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_testing(self) -> bool:
        """Testing mode turns on the /api/testing endpoints and the log stream."""
        return self.environment == "testing"

    @property
    def stream_limit(self) -> int:
        """How many SSE streams may be open at once (each holds a waitress thread)."""
        if self.sse_stream_limit is not None:
            return self.sse_stream_limit
        return max(1, self.waitress_threads - RESERVED_THREADS)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables; raise ConfigError on bad input."""
        env = os.environ if env is None else env
        database_url = env.get("DATABASE_URL", "").strip()
        if not database_url:
            raise ConfigError(
                "DATABASE_URL is not set. Set it to a PostgreSQL URL, e.g. "
                "DATABASE_URL=postgresql://postgres:secret@127.0.0.1:5432/app"
            )
        validate_database_url(database_url)
        environment = env.get("FLASK_ENV", "development").strip() or "development"
        if environment not in ENVIRONMENTS:
            raise ConfigError(f"FLASK_ENV={environment!r} is not one of {', '.join(ENVIRONMENTS)}.")
        default_heartbeat = 30.0 if environment == "production" else 5.0
        return cls(
            database_url=database_url,
            environment=environment,
            sse_heartbeat_interval=_positive_float(
                env, "SSE_HEARTBEAT_INTERVAL", default_heartbeat
            ),
            task_stream_idle_interval=_positive_float(env, "TASK_STREAM_IDLE_INTERVAL", 5.0),
            shutdown_timeout=_positive_float(env, "SHUTDOWN_TIMEOUT", 10.0),
            task_pool_size=_positive_int(env, "TASK_POOL_SIZE", 4),
            task_retention_seconds=_positive_float(env, "TASK_RETENTION_SECONDS", 300.0),
            db_pool_max_size=_positive_int(env, "DB_POOL_MAX_SIZE", 20),
            log_level=_log_level(env),
            waitress_threads=_positive_int(env, "WAITRESS_THREADS", 32),
            version=env.get("APP_VERSION", "0.1.0"),
            git_commit=env.get("GIT_COMMIT", "unknown"),
            worker_stale_after=_positive_float(env, "WORKER_STALE_AFTER", 10.0),
            max_request_bytes=_positive_int(env, "MAX_REQUEST_BYTES", 1_048_576),
            waitress_connection_limit=_positive_int(env, "WAITRESS_CONNECTION_LIMIT", 500),
            waitress_channel_timeout=_positive_float(env, "WAITRESS_CHANNEL_TIMEOUT", 60.0),
            sse_stream_limit=_positive_int(env, "SSE_STREAM_LIMIT", 0) or None,
        ).checked()

    def checked(self) -> Settings:
        """Raise ConfigError when settings contradict each other; else return self."""
        if self.stream_limit >= self.waitress_threads:
            raise ConfigError(
                f"SSE_STREAM_LIMIT={self.stream_limit} must be below WAITRESS_THREADS="
                f"{self.waitress_threads}: streams would take every thread and health checks "
                "would hang. Lower SSE_STREAM_LIMIT or raise WAITRESS_THREADS."
            )
        if self.waitress_channel_timeout <= self.sse_heartbeat_interval:
            raise ConfigError(
                f"WAITRESS_CHANNEL_TIMEOUT={self.waitress_channel_timeout:g} must exceed "
                f"SSE_HEARTBEAT_INTERVAL={self.sse_heartbeat_interval:g}, or waitress closes "
                "idle event streams between heartbeats."
            )
        return self


def validate_database_url(url: str) -> None:
    """Reject anything that is not a postgresql:// URL with a host or socket and a database."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(
            f"DATABASE_URL must start with postgresql:// (got scheme {parts.scheme!r})."
        )
    if not parts.path.strip("/"):
        raise ConfigError("DATABASE_URL names no database: add /<dbname> after the host.")


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number.") from None
    if value <= 0:
        raise ConfigError(f"{name}={raw!r} must be greater than 0.")
    return value


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number.") from None
    if value < 1:
        raise ConfigError(f"{name}={raw!r} must be at least 1.")
    return value


def _log_level(env: Mapping[str, str]) -> str:
    level = env.get("LOG_LEVEL", "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"LOG_LEVEL={level!r} is not one of DEBUG, INFO, WARNING, ERROR.")
    return level
