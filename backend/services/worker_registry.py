"""Live workers, as their heartbeats in the database show them."""

from __future__ import annotations

import time
from typing import Any

from psycopg import Connection

from backend.bus.worker_options import LIVE, stored_values
from backend.db import Database
from backend.schemas.config import AppConfig


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
                # What the worker really uses: {effective, sources, restart_required}.
                "settings": (row[8] or {}).get("settings"),
            }
            for row in rows
        ]

    def live_max_attempts(self, conn: Connection[Any], domain: str) -> int | None:
        """The lowest max_attempts the live workers of `domain` use; None without any."""
        row = conn.execute(
            """
            SELECT min((details #>> '{settings,effective,max_attempts}')::int)
            FROM worker_heartbeat
            WHERE domain = %s AND last_heartbeat > NOW() - make_interval(secs => %s)
            """,
            (domain, self.stale_after),
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def lagging_workers(self, stored: AppConfig) -> list[str]:
        """Live workers that still use another value than `stored` for a setting they take
        from it and can change live."""
        wanted = stored_values(stored)
        lagging = []
        for worker in self.live_workers():
            settings = worker["settings"] or {}
            sources, effective = settings.get("sources", {}), settings.get("effective", {})
            for name in sorted(LIVE):
                if sources.get(name) == "stored" and effective.get(name) != wanted[name]:
                    lagging.append(worker["worker_id"])
                    break
        return lagging

    def wait_until_following(self, stored: AppConfig, timeout: float) -> list[str]:
        """Wait (bounded) until every live worker uses `stored`; the ones still lagging."""
        deadline = time.perf_counter() + timeout
        while True:
            lagging = self.lagging_workers(stored)
            if not lagging or time.perf_counter() >= deadline:
                return lagging
            time.sleep(0.1)  # heartbeats arrive every interval; poll between them

    def effective_settings(self, stored: AppConfig) -> dict[str, Any]:
        """The stored config beside each live worker's settings, and where they differ."""
        workers = self.live_workers()
        wanted = stored_values(stored)
        reports = []
        differences = []
        for worker in workers:
            settings = worker["settings"] or {}
            effective = settings.get("effective", {})
            reports.append(
                {
                    "worker_id": worker["worker_id"],
                    "domain": worker["domain"],
                    "last_heartbeat": worker["last_heartbeat"],
                    **settings,
                }
            )
            for name, value in effective.items():
                if name in wanted and wanted[name] != value:
                    differences.append(
                        {
                            "worker_id": worker["worker_id"],
                            "setting": name,
                            "stored": wanted[name],
                            "effective": value,
                            "why": "set by a command-line flag"
                            if settings.get("sources", {}).get(name) == "flag"
                            else "takes effect after a worker restart",
                        }
                    )
        return {"stored": wanted, "workers": reports, "differences": differences}
