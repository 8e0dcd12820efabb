"""The audit trail of one command."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from backend.api.context import container
from backend.services.command_service import parse_command_id
from backend.utils.errors import RecordNotFoundException, RequestValidationException

audit_bp = Blueprint("audit", __name__, url_prefix="/api/audit")


@audit_bp.get("")
def audit() -> Response:
    """Chronological events of `?command_id=` (404 when the command does not exist)."""
    raw = request.args.get("command_id", "").strip()
    if not raw:
        raise RequestValidationException("command_id", "is required")
    command_id = parse_command_id(raw)
    events = container().commands.audit_trail(command_id)
    if not events:
        raise RecordNotFoundException("Command", raw)
    return jsonify({"command_id": str(command_id), "events": events})
