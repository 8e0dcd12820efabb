"""Utility endpoints: the version stream."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from backend.api.context import container, request_ids
from backend.api.stream_generators import version_stream
from backend.utils.sse import sse_response

utils_bp = Blueprint("utils", __name__, url_prefix="/api/utils")


@utils_bp.get("/version")
def version() -> Response:
    """Build facts as plain JSON."""
    return jsonify(container().versions.get_version_info())


@utils_bp.get("/version/stream")
def stream_version() -> Response:
    """SSE: connection_open, version, heartbeat every SSE_HEARTBEAT_INTERVAL, close on shutdown."""
    c = container()
    correlation_id, test_id = request_ids()
    frames = version_stream(
        c.versions.get_version_info,
        c.coordinator,
        c.settings.sse_heartbeat_interval,
        correlation_id,
        test_id,
    )
    return sse_response(c.streams.open(frames, "version"))
