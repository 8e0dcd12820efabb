"""Task progress streams."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from backend.api.context import container, request_ids
from backend.api.stream_generators import task_stream
from backend.utils.errors import RecordNotFoundException
from backend.utils.sse import sse_response

tasks_bp = Blueprint("tasks", __name__, url_prefix="/api/tasks")


@tasks_bp.get("/<task_id>/stream")
def stream_task(task_id: str) -> Response:
    """SSE: connection_open, task_event..., connection_close (or error for unknown ids)."""
    c = container()
    correlation_id, test_id = request_ids()
    frames = task_stream(
        c.tasks, task_id, c.settings.task_stream_idle_interval, correlation_id, test_id
    )
    return sse_response(c.streams.track(frames, f"task {task_id}"))


@tasks_bp.get("/<task_id>")
def task_status(task_id: str) -> Response:
    """The task's last event and whether it is done."""
    status = container().tasks.status(task_id)
    if status is None:
        raise RecordNotFoundException("Task", task_id)
    return jsonify(status)
