"""HTTP layer: blueprints only; logic lives in services."""

from __future__ import annotations

from flask import Flask

from backend.config import Settings


def register_blueprints(app: Flask, settings: Settings) -> None:
    from backend.api.audit import audit_bp
    from backend.api.command_types import command_types_bp
    from backend.api.commands import commands_bp
    from backend.api.config import config_bp
    from backend.api.health import health_bp
    from backend.api.tasks import tasks_bp
    from backend.api.tsq import tsq_bp
    from backend.api.utils import utils_bp
    from backend.api.workers import workers_bp

    blueprints = (
        health_bp,
        command_types_bp,
        commands_bp,
        tsq_bp,
        audit_bp,
        workers_bp,
        config_bp,
        tasks_bp,
        utils_bp,
    )
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    if settings.is_testing:
        from backend.api.testing import testing_bp

        app.register_blueprint(testing_bp)
