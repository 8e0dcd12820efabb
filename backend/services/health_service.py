"""Readiness: database reachable, no migration pending, not shutting down."""

from __future__ import annotations

from typing import Any

from backend.db import Database
from backend.services.migration_service import get_pending_migrations
from backend.utils.shutdown import ShutdownCoordinator


class HealthService:
    def __init__(self, database: Database, coordinator: ShutdownCoordinator) -> None:
        self.database = database
        self.coordinator = coordinator

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """(ready, body): the body names each check and, when failing, why."""
        checks: dict[str, Any] = {}
        if self.coordinator.is_shutting_down():
            checks["shutting_down"] = {"ok": False, "detail": "shutdown in progress"}
            return False, {"status": "not_ready", "failed": ["shutting_down"], "checks": checks}
        checks["shutting_down"] = {"ok": True}
        try:
            with self.database.transaction(timeout=2.0) as conn:
                # A reset holds locks for its whole transaction: answer 503, don't hang.
                conn.execute("SET LOCAL statement_timeout = 2000")
                conn.execute("SELECT 1")
                pending = get_pending_migrations(conn)
        except Exception as exc:
            checks["database"] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}".strip()}
            checks["migrations"] = {"ok": False, "detail": "unknown: database unreachable"}
            return False, {"status": "not_ready", "failed": ["database"], "checks": checks}
        checks["database"] = {"ok": True}
        checks["migrations"] = {"ok": not pending, "pending": pending}
        failed = [] if not pending else ["migrations"]
        return not failed, {
            "status": "ready" if not failed else "not_ready",
            "failed": failed,
            "checks": checks,
        }
