"""HTTP layer: blueprints only; logic lives in services."""

from __future__ import annotations

from flask import Flask

from backend.config import Settings


def register_blueprints(app: Flask, settings: Settings) -> None:
    from backend.api.command_types import command_types_bp
    from backend.api.health import health_bp
    from backend.api.tasks import tasks_bp
    from backend.api.utils import utils_bp

    for blueprint in (health_bp, command_types_bp, tasks_bp, utils_bp):
        app.register_blueprint(blueprint)
    if settings.is_testing:
        from backend.api.testing import testing_bp

        app.register_blueprint(testing_bp)
