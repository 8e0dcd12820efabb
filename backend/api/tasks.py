"""Task progress streams."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from backend.api.context import container, request_ids
from backend.api.stream_generators import task_stream
from backend.utils.errors import RecordNotFoundException
from backend.utils.sse import LAST_EVENT_ID_HEADER, sse_response

tasks_bp = Blueprint("tasks", __name__, url_prefix="/api/tasks")


@tasks_bp.get("/<task_id>/stream")
def stream_task(task_id: str) -> Response:
    """SSE: connection_open, task_event..., connection_close (stream_error for unknown ids).

    A reconnect (Last-Event-ID) continues after that event; one to a finished task that has
    nothing more to send is 204 and one to an unknown task 404, so EventSource stops.
    """
    c = container()
    correlation_id, test_id = request_ids()
    after = 0
    last_event_id = request.headers.get(LAST_EVENT_ID_HEADER)
    if last_event_id is not None:
        progress = c.tasks.progress_of(task_id)
        if progress is None:
            raise RecordNotFoundException("Task", task_id)
        after = int(last_event_id) if last_event_id.strip().isdigit() else 0
        emitted, finished = progress
        if finished and after >= emitted:
            return Response(status=204)
    frames = task_stream(
        c.tasks, task_id, c.settings.task_stream_idle_interval, correlation_id, test_id, after
    )
    return sse_response(c.streams.open(frames, f"task {task_id}"))


@tasks_bp.get("/<task_id>")
def task_status(task_id: str) -> Response:
    """The task's last event and whether it is done."""
    status = container().tasks.status(task_id)
    if status is None:
        raise RecordNotFoundException("Task", task_id)
    return jsonify(status)
