"""Live workers, as their heartbeats in the database show them."""

from __future__ import annotations

from typing import Any

from backend.db import Database


class WorkerRegistry:
    def __init__(self, database: Database, stale_after: float) -> None:
        self.database = database
        self.stale_after = stale_after

    def live_workers(self) -> list[dict[str, Any]]:
        """Workers whose last heartbeat is younger than `stale_after` seconds."""
        with self.database.transaction() as conn:
            rows = conn.execute(
                """
                SELECT worker_id, pid, host, domain, concurrency, started_at, last_heartbeat,
                       health, details
                FROM worker_heartbeat
                WHERE last_heartbeat > NOW() - make_interval(secs => %s)
                ORDER BY started_at, worker_id
                """,
                (self.stale_after,),
            ).fetchall()
        return [
            {
                "worker_id": row[0],
                "pid": row[1],
                "host": row[2],
                "domain": row[3],
                "concurrency": row[4],
                "started_at": row[5].isoformat(),
                "last_heartbeat": row[6].isoformat(),
                "health": row[7],
                "details": row[8],
            }
            for row in rows
        ]
