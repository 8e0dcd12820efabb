"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from backend.api.context import container

health_bp = Blueprint("health", __name__, url_prefix="/api/health")


@health_bp.get("/healthz")
def healthz() -> Response:
    """Liveness: 200 while the process serves requests."""
    return jsonify({"status": "alive"})


@health_bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Readiness: 200 only when the database answers, nothing is pending, no shutdown."""
    ready, body = container().health.readiness()
    return jsonify(body), 200 if ready else 503
