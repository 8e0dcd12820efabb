"""Testing-mode endpoints (registered only when FLASK_ENV=testing)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from backend.api.context import container, parse_body, request_ids
from backend.api.stream_generators import log_stream
from backend.schemas.testing import ScriptedTaskSchema
from backend.services.scripted_task import scripted_task
from backend.utils.errors import RequestValidationException
from backend.utils.log_capture import LogCaptureHandler
from backend.utils.sse import LAST_EVENT_ID_HEADER, sse_response

testing_bp = Blueprint("testing", __name__, url_prefix="/api/testing")

_BOOLEANS = {"true": True, "false": False}


@testing_bp.post("/reset")
def reset() -> Response:
    """Drop everything, migrate from scratch, sync master data, optionally seed."""
    raw = request.args.get("seed", "false").lower()
    if raw not in _BOOLEANS:
        raise RequestValidationException("seed", f"must be true or false, got {raw!r}")
    result = container().testing.reset(seed=_BOOLEANS[raw])
    return jsonify(result.to_dict())


@testing_bp.get("/logs/stream")
def stream_logs() -> Response:
    """SSE: every log record at INFO and above while the client is connected; a reconnect
    with Last-Event-ID first gets the records it missed (from a bounded buffer)."""
    c = container()
    correlation_id, test_id = request_ids()
    frames = log_stream(
        LogCaptureHandler.get_instance(),
        c.settings.sse_heartbeat_interval,
        correlation_id,
        test_id,
        owner=c.coordinator,
        last_event_id=request.headers.get(LAST_EVENT_ID_HEADER),
    )
    return sse_response(c.streams.open(frames, "logs"))


@testing_bp.post("/tasks")
def start_scripted_task() -> tuple[Response, int]:
    """Start a scripted task whose stream tests can predict."""
    spec = parse_body(ScriptedTaskSchema)
    c = container()
    correlation_id, test_id = request_ids()
    task_id = c.tasks.start_task(
        scripted_task(spec.steps, spec.step_delay_ms, spec.fail_at_step),
        correlation_id=correlation_id,
        test_id=test_id,
    )
    return jsonify({"task_id": task_id}), 202
