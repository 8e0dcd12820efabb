"""The stored worker/retry configuration: defaults, overridden by what the UI saved."""

from __future__ import annotations

from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb

from backend.schemas.config import AppConfig

_KEYS = ("worker", "retry")


def load_config(conn: Connection[Any]) -> AppConfig:
    rows = conn.execute(
        "SELECT key, value FROM app_config WHERE key = ANY(%s)", (list(_KEYS),)
    ).fetchall()
    return AppConfig.model_validate({key: value for key, value in rows})


def save_config(conn: Connection[Any], config: AppConfig) -> AppConfig:
    for key in _KEYS:
        conn.execute(
            """
            INSERT INTO app_config (key, value) VALUES (%s, %s)
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = NOW()
            """,
            (key, Jsonb(getattr(config, key).model_dump())),
        )
    return config
