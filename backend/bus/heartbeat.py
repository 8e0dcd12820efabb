"""A worker's heartbeat: its row in worker_heartbeat, refreshed every interval.

The same loop notices a reset (queue gone, then back), logs when the worker has recovered,
and reads the stored config so the worker follows it without a restart; the row's details
report the settings the worker really uses (`details.settings`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from backend.bus import queue_name
from backend.bus.worker_options import WorkerOptions
from backend.schemas.config import AppConfig
from backend.services.config_service import load_config

logger = logging.getLogger(__name__)


class Heartbeat:
    def __init__(
        self,
        pool: ConnectionPool[Any],
        options: WorkerOptions,
        health: Callable[[], dict[str, Any]],
        follow_config: Callable[[AppConfig], dict[str, Any]] | None = None,
    ) -> None:
        self.pool = pool
        self.options = options
        self.health = health
        # Given the stored config, applies what it can and returns the settings report.
        self.follow_config = follow_config
        self.started_at = datetime.now(UTC)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)
        self._queue_missing = False
        self._failing = False
        self._queue_created: object = None

    def start(self) -> None:
        self.beat()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.options.heartbeat_interval + 2)
        try:
            with self.pool.connection(timeout=2) as conn:
                conn.execute(
                    "DELETE FROM worker_heartbeat WHERE worker_id = %s", (self.options.worker_id,)
                )
        except Exception as exc:  # the row goes stale on its own; say so and carry on
            logger.warning("Could not remove heartbeat row: %s", exc)

    def _loop(self) -> None:
        while not self._stop.wait(self.options.heartbeat_interval):
            self.beat()

    def beat(self) -> None:
        """One heartbeat; failures are logged once per outage, recovery is logged too."""
        queue = queue_name(self.options.domain)
        try:
            with self.pool.connection(timeout=2) as conn:
                created = conn.execute(
                    "SELECT created_at FROM pgmq.meta WHERE queue_name = %s", (queue,)
                ).fetchone()
                queue_ok = created is not None
                health = self.health()
                if self.follow_config is not None and queue_ok:
                    health = {**health, "settings": self.follow_config(load_config(conn))}
                conn.execute(
                    """
                    INSERT INTO worker_heartbeat (worker_id, pid, host, domain, concurrency,
                        started_at, last_heartbeat, health, details)
                    VALUES (%s, %s, %s, %s, %s, %s, NOW(), %s, %s)
                    ON CONFLICT (worker_id) DO UPDATE SET last_heartbeat = NOW(),
                        health = EXCLUDED.health, details = EXCLUDED.details
                    """,
                    (
                        self.options.worker_id,
                        os.getpid(),
                        socket.gethostname(),
                        self.options.domain,
                        self.options.concurrency,
                        self.started_at,
                        str(health.get("state", "UNKNOWN")),
                        Jsonb(health),
                    ),
                )
        except Exception as exc:
            if not self._failing:
                logger.warning("Heartbeat failed (database or reset in progress?): %s", exc)
            self._failing = True
            return
        if self._failing:
            logger.info("Heartbeat recovered: database reachable again")
            self._failing = False
        if not queue_ok and not self._queue_missing:
            logger.warning("Queue %s is missing (reset in progress?)", queue)
            self._queue_missing = True
        elif queue_ok and self._queue_missing:
            logger.info("Queue %s is back; worker recovered without restart", queue)
            self._queue_missing = False
        if created is not None:
            if self._queue_created is not None and created[0] != self._queue_created:
                logger.info(
                    "Queue %s was re-created (testing reset); worker recovered without restart",
                    queue,
                )
            self._queue_created = created[0]
        if self.options.ready_file is not None and not self.options.ready_file.exists():
            self.options.ready_file.write_text(f"{os.getpid()}\n")
