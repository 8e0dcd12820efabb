"""The application factory."""

from __future__ import annotations

import logging

from flask import Flask

from backend.api import register_blueprints
from backend.config import Settings
from backend.services.container import Container
from backend.utils import (
    access_log,
    database_errors,
    error_handling,
    request_context,
    request_guards,
)
from backend.utils.log_capture import LogCaptureHandler
from backend.utils.logging_setup import configure_logging
from backend.utils.shutdown import LifetimeEvent

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask app: settings → logging → services → request hooks → blueprints."""
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config["SETTINGS"] = settings

    container = Container.build(settings)
    container.database.open()
    app.extensions["container"] = container

    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    access_log.init_app(app)
    request_context.init_app(app)
    request_guards.init_app(app)
    error_handling.init_app(app)
    database_errors.init_app(app, container.database)
    register_blueprints(app, settings)
    _register_web_ui(app)
    if settings.is_testing:
        _enable_log_capture(container)
    logger.info(
        "Backend app created (environment=%s, testing=%s)",
        settings.environment,
        settings.is_testing,
    )
    return app


def _register_web_ui(app: Flask) -> None:
    from backend.web import web_bp

    app.register_blueprint(web_bp)


def _enable_log_capture(container: Container) -> None:
    """Testing mode: stream every INFO+ record to log-stream clients; close them on shutdown."""
    capture = LogCaptureHandler.get_instance()
    root = logging.getLogger()
    if capture not in root.handlers:
        root.addHandler(capture)
    if root.level > logging.INFO:
        root.setLevel(logging.INFO)

    def close_clients(event: LifetimeEvent) -> None:
        if event is LifetimeEvent.PREPARE_SHUTDOWN:
            capture.close_clients_of(container.coordinator)

    container.coordinator.register_lifetime_notification(close_clients)
