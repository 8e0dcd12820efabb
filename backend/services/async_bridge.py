"""Run reliable-cmd's async-only operations (TSQ) from sync code on one long-lived loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from psycopg_pool import AsyncConnectionPool

T = TypeVar("T")


class AsyncBridge:
    """A background event loop with an async pool, started on first use."""

    def __init__(self, database_url: str, max_size: int = 4) -> None:
        self.database_url = database_url
        self.max_size = max_size
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pool: AsyncConnectionPool[Any] | None = None
        self._lock = threading.Lock()

    def _ensure_started(self) -> tuple[asyncio.AbstractEventLoop, AsyncConnectionPool[Any]]:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="async-bridge", daemon=True)
                thread.start()

                async def open_pool() -> AsyncConnectionPool[Any]:
                    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
                        self.database_url,
                        min_size=1,
                        max_size=self.max_size,
                        open=False,
                        check=AsyncConnectionPool.check_connection,
                    )
                    await pool.open(wait=False)
                    return pool

                self._pool = asyncio.run_coroutine_threadsafe(open_pool(), loop).result(10)
                self._loop, self._thread = loop, thread
            assert self._pool is not None
            return self._loop, self._pool

    def run(
        self, operation: Callable[[AsyncConnectionPool[Any]], Awaitable[T]], timeout: float = 30
    ) -> T:
        loop, pool = self._ensure_started()

        async def call() -> T:
            return await operation(pool)

        return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout)

    def close(self) -> None:
        with self._lock:
            loop, pool, thread = self._loop, self._pool, self._thread
            self._loop = self._pool = self._thread = None
        if loop is None or pool is None:
            return
        asyncio.run_coroutine_threadsafe(pool.close(timeout=2), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=5)
