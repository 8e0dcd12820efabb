"""Worker and retry parameters, as stored for workers to pick up at start."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from backend.api.context import container, parse_body
from backend.schemas.config import AppConfig
from backend.services.config_service import load_config, save_config

config_bp = Blueprint("config", __name__, url_prefix="/api/config")


@config_bp.get("")
def get_config() -> Response:
    """The stored config (defaults where nothing was saved)."""
    with container().database.transaction() as conn:
        return jsonify(load_config(conn).model_dump())


@config_bp.put("")
def put_config() -> Response:
    """Validate and store the config; workers started afterwards use it."""
    config = parse_body(AppConfig)
    with container().database.transaction() as conn:
        return jsonify(save_config(conn, config).model_dump())
