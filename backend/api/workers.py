"""Live workers (from their heartbeats)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from backend.api.context import container

workers_bp = Blueprint("workers", __name__, url_prefix="/api/workers")


@workers_bp.get("")
def list_workers() -> Response:
    """Workers with a recent heartbeat."""
    return jsonify({"workers": container().workers.live_workers()})
