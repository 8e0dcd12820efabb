"""Test commands: send one, send many, browse, inspect; and the status counts."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from pydantic import ValidationError

from backend.api.context import container, parse_body, request_ids
from backend.schemas.commands import BulkSendSchema, CommandFilterSchema, SendCommandSchema
from backend.services.command_service import parse_command_id
from backend.utils.error_handling import validation_error_from_pydantic

commands_bp = Blueprint("commands", __name__, url_prefix="/api")


@commands_bp.post("/commands")
def send_command() -> tuple[Response, int]:
    """Send one test command with a scripted behavior."""
    body = parse_body(SendCommandSchema)
    correlation_id, test_id = request_ids()
    sent = container().commands.send(
        body.command_type, body.payload, body.behavior, correlation_id, test_id, body.domain
    )
    return jsonify(sent), 201


@commands_bp.post("/commands/bulk")
def send_bulk() -> tuple[Response, int]:
    """Send many commands as a background task; progress on /api/tasks/<id>/stream."""
    body = parse_body(BulkSendSchema)
    c = container()
    correlation_id, test_id = request_ids()
    bulk = c.commands.bulk_task(
        body.command_type,
        body.shares(),
        body.payload,
        correlation_id,
        test_id,
        mixed=body.mix is not None,
        domain=body.domain,
    )
    task_id = c.tasks.start_task(bulk.run, correlation_id=correlation_id, test_id=test_id)
    accepted: dict[str, object] = {"task_id": task_id, "total": bulk.total}
    if bulk.notes:  # shares that will reach the troubleshooting queue
        accepted["notes"] = bulk.notes
    return jsonify(accepted), 202


@commands_bp.get("/commands")
def list_commands() -> Response:
    """Commands filtered by status, domain, type, created range; paginated."""
    try:
        filters = CommandFilterSchema.model_validate(request.args.to_dict())
    except ValidationError as exc:
        raise validation_error_from_pydantic(exc) from None
    return jsonify(container().commands.list_commands(filters))


@commands_bp.get("/commands/<command_id>")
def get_command(command_id: str) -> Response:
    """One command with behavior, result, last error and audit trail."""
    return jsonify(container().commands.get_command(parse_command_id(command_id)))


@commands_bp.get("/stats")
def stats() -> Response:
    """How many commands are in each status."""
    return jsonify(container().commands.stats())
