"""The services one app instance uses, built once in the app factory."""

from __future__ import annotations

from dataclasses import dataclass

from commandbus.sync import SyncCommandBus

from backend.bus.compat import apply_pgmq_compat
from backend.config import Settings
from backend.db import Database
from backend.services.async_bridge import AsyncBridge
from backend.services.command_service import CommandService
from backend.services.command_type_service import CommandTypeService
from backend.services.health_service import HealthService
from backend.services.task_service import TaskService
from backend.services.testing_service import TestingService
from backend.services.tsq_service import TsqService
from backend.services.version_service import VersionService
from backend.services.worker_registry import WorkerRegistry
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
    commands: CommandService
    tsq: TsqService
    workers: WorkerRegistry
    bridge: AsyncBridge

    @classmethod
    def build(cls, settings: Settings) -> Container:
        apply_pgmq_compat()
        database = Database(settings.database_url, max_size=settings.db_pool_max_size)
        coordinator = ShutdownCoordinator(settings.shutdown_timeout)
        streams = ActiveStreams(limit=settings.stream_limit)
        tasks = TaskService(
            coordinator,
            max_workers=settings.task_pool_size,
            retention_seconds=settings.task_retention_seconds,
        )
        # Registered after TaskService: task streams close once their tasks are drained.
        coordinator.register_shutdown_waiter("SSE streams", streams.wait_all_closed)
        bridge = AsyncBridge(settings.database_url)
        reset_gate = ResetLock()
        workers = WorkerRegistry(database, settings.worker_stale_after)
        return cls(
            settings=settings,
            database=database,
            coordinator=coordinator,
            streams=streams,
            health=HealthService(database, coordinator),
            command_types=CommandTypeService(database, reset_gate),
            tasks=tasks,
            testing=TestingService(settings.database_url, reset_gate),
            versions=VersionService(settings),
            commands=CommandService(database, SyncCommandBus(database.pool), reset_gate, workers),
            tsq=TsqService(database, bridge),
            workers=workers,
            bridge=bridge,
        )

    def close(self) -> None:
        self.bridge.close()
        self.testing.close()
        self.database.close()
