"""Worker and retry parameters: stored (workers follow them live, unless a flag fixes a
value), and what each live worker really uses."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from backend.api.context import container, parse_body
from backend.schemas.config import AppConfig
from backend.services.config_service import load_config, save_config

# How long PUT waits for live workers to report the new values (they re-read every heartbeat).
FOLLOW_TIMEOUT_SECONDS = 3.0

config_bp = Blueprint("config", __name__, url_prefix="/api/config")


@config_bp.get("")
def get_config() -> Response:
    """The stored config (defaults where nothing was saved)."""
    with container().database.transaction() as conn:
        return jsonify(load_config(conn).model_dump())


@config_bp.put("")
def put_config() -> Response:
    """Validate and store the config; live workers follow it within a heartbeat (retries,
    backoff, visibility timeout) or after a restart (concurrency, poll interval)."""
    config = parse_body(AppConfig)
    c = container()
    with c.database.transaction() as conn:
        saved = save_config(conn, config)
    # Answer once the live workers use it, so the next command already gets the new values.
    lagging = c.workers.wait_until_following(saved, timeout=FOLLOW_TIMEOUT_SECONDS)
    response = jsonify(saved.model_dump())
    if lagging:
        response.headers["X-Workers-Lagging"] = ",".join(lagging)
    return response


@config_bp.get("/effective")
def effective_config() -> Response:
    """The stored config beside each live worker's effective settings, and the differences."""
    c = container()
    with c.database.transaction() as conn:
        stored = load_config(conn)
    return jsonify(c.workers.effective_settings(stored))
