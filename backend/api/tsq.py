"""The troubleshooting queue: list, and retry / cancel / complete (one or many)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, jsonify

from backend.api.context import container, parse_body
from backend.schemas.commands import TsqActionSchema, TsqBulkSchema
from backend.services.command_service import parse_command_id
from backend.services.tsq_service import ACTIONS

tsq_bp = Blueprint("tsq", __name__, url_prefix="/api/tsq")


@tsq_bp.get("")
def list_tsq() -> Response:
    """Commands waiting for an operator, with their last error."""
    return jsonify(container().tsq.list_items())


@tsq_bp.post("/<command_id>/<action>")
def act(command_id: str, action: str) -> Response:
    """Retry, cancel or complete one command (409 when it is not in the TSQ)."""
    if action not in ACTIONS:
        abort(404)
    body = parse_body(TsqActionSchema)
    outcome = container().tsq.act(
        action, parse_command_id(command_id), body.reason, body.result, body.operator
    )
    return jsonify(outcome)


@tsq_bp.post("/bulk")
def act_bulk() -> Response:
    """One action over many ids; each id reports its own outcome."""
    body = parse_body(TsqBulkSchema)
    return jsonify({"results": container().tsq.act_many(body.action, body.command_ids)})
