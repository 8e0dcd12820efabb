"""The services one app instance uses, built once in the app factory."""

from __future__ import annotations

from dataclasses import dataclass

from backend.config import Settings
from backend.db import Database
from backend.services.command_type_service import CommandTypeService
from backend.services.health_service import HealthService
from backend.services.task_service import TaskService
from backend.services.testing_service import TestingService
from backend.services.version_service import VersionService
from backend.utils.reset_lock import ResetLock
from backend.utils.shutdown import ShutdownCoordinator
from backend.utils.sse import ActiveStreams


@dataclass
class Container:
    settings: Settings
    database: Database
    coordinator: ShutdownCoordinator
    streams: ActiveStreams
    health: HealthService
    command_types: CommandTypeService
    tasks: TaskService
    testing: TestingService
    versions: VersionService

    @classmethod
    def build(cls, settings: Settings) -> Container:
        database = Database(settings.database_url, max_size=settings.db_pool_max_size)
        coordinator = ShutdownCoordinator(settings.shutdown_timeout)
        streams = ActiveStreams()
        tasks = TaskService(
            coordinator,
            max_workers=settings.task_pool_size,
            retention_seconds=settings.task_retention_seconds,
        )
        # Registered after TaskService: task streams close once their tasks are drained.
        coordinator.register_shutdown_waiter("SSE streams", streams.wait_all_closed)
        return cls(
            settings=settings,
            database=database,
            coordinator=coordinator,
            streams=streams,
            health=HealthService(database, coordinator),
            command_types=CommandTypeService(database),
            tasks=tasks,
            testing=TestingService(settings.database_url, ResetLock()),
            versions=VersionService(settings),
        )

    def close(self) -> None:
        self.testing.close()
        self.database.close()
