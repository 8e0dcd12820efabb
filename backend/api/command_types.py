"""Command types (master data) over HTTP."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from backend.api.context import container, parse_body
from backend.schemas.command_type import CommandTypeCreateSchema, CommandTypeResponseSchema

command_types_bp = Blueprint("command_types", __name__, url_prefix="/api/command-types")


def _dump(item: object) -> dict[str, object]:
    return CommandTypeResponseSchema.model_validate(item).model_dump(mode="json")


@command_types_bp.get("")
def list_command_types() -> Response:
    """All command types, by domain and name."""
    return jsonify([_dump(t) for t in container().command_types.list_types()])


@command_types_bp.post("")
def create_command_type() -> tuple[Response, int]:
    """Create a command type."""
    data = parse_body(CommandTypeCreateSchema)
    created = container().command_types.create_type(**data.model_dump())
    return jsonify(_dump(created)), 201


@command_types_bp.get("/<int:type_id>")
def get_command_type(type_id: int) -> Response:
    """One command type."""
    return jsonify(_dump(container().command_types.get_type(type_id)))


@command_types_bp.delete("/<int:type_id>")
def delete_command_type(type_id: int) -> tuple[str, int]:
    """Delete a command type no test command uses."""
    container().command_types.delete_type(type_id)
    return "", 204
