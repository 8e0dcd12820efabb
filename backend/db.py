"""The database connection pool the backend shares between requests and services."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from urllib.parse import urlsplit

import psycopg
from psycopg import Connection
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool, PoolTimeout

from backend.utils.errors import DatabaseUnavailableException, ServiceBusyException

# A checkout that takes longer than this makes us ask the server directly whether it is up,
# so a request during an outage answers 503 at once instead of after the full checkout timeout.
FAST_CHECKOUT_SECONDS = 0.5
PROBE_CONNECT_TIMEOUT = 1  # seconds (libpq's connect_timeout is whole seconds)
_PROBE_CACHE_SECONDS = 0.5  # one probe answers every request in this window
_OUTAGE_MEMORY_SECONDS = 5.0  # after a failed probe, probe before every checkout this long


def describe_database(url: str) -> str:
    """'app' at host:port, from the URL, never with its password."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "?"
    host = parts.hostname or "local socket"
    port = f":{parts.port}" if parts.port else ""
    return f"'{name}' at {host}{port}"


def wait_until_answering(url: str, timeout: float, interval: float = 0.02) -> str | None:
    """Connect to `url` until it works or `timeout` passes; None, or the last error."""
    deadline = time.perf_counter() + timeout
    while True:
        try:
            with psycopg.connect(url, connect_timeout=PROBE_CONNECT_TIMEOUT):
                return None
        except psycopg.OperationalError as exc:
            if time.perf_counter() >= deadline:
                return str(exc).strip()
        time.sleep(interval)  # the server is starting: its next answer is milliseconds away


class Database:
    """A psycopg pool; `transaction()` commits on success and rolls back on error.

    Checkout failures become HTTP-shaped errors: 503 DATABASE_UNAVAILABLE (the server does not
    answer) or 503 DATABASE_BUSY (it answers, but every pooled connection is in use).
    """

    def __init__(self, url: str, max_size: int = 20, checkout_timeout: float = 5.0) -> None:
        self.url = url
        self.max_size = max_size
        self.checkout_timeout = checkout_timeout
        self.label = describe_database(url)
        # Opened lazily and without waiting, so the process serves /healthz even when the
        # database is down; `check` drops dead connections (e.g. after a database restart).
        self.pool: ConnectionPool[Connection[TupleRow]] = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            open=False,
            check=ConnectionPool.check_connection,
            timeout=checkout_timeout,
            kwargs={"connect_timeout": PROBE_CONNECT_TIMEOUT + 1},
            name="backend",
        )
        self._probe_lock = threading.Lock()
        self._probed_at = float("-inf")
        self._probe_error: str | None = None
        self._down_at = float("-inf")

    def open(self) -> None:
        self.pool.open(wait=False)

    def close(self) -> None:
        self.pool.close(timeout=2.0)

    @contextmanager
    def transaction(self, timeout: float | None = None) -> Iterator[Connection[TupleRow]]:
        budget = timeout or self.checkout_timeout
        if time.perf_counter() - self._down_at < _OUTAGE_MEMORY_SECONDS:
            self.raise_if_unreachable()
        with ExitStack() as stack:
            first = min(FAST_CHECKOUT_SECONDS, budget)
            try:
                conn = stack.enter_context(self.pool.connection(timeout=first))
            except PoolTimeout:
                self.raise_if_unreachable()
                try:
                    conn = stack.enter_context(
                        self.pool.connection(timeout=max(0.1, budget - first))
                    )
                except PoolTimeout:
                    raise self.busy() from None
            yield conn

    def raise_if_unreachable(self) -> None:
        """Raise DatabaseUnavailableException when a fresh connection attempt fails."""
        reason = self.probe()
        if reason is not None:
            raise DatabaseUnavailableException(self.label, reason)

    def probe(self) -> str | None:
        """Why a new connection fails right now, or None when it works (cached briefly)."""
        with self._probe_lock:
            now = time.perf_counter()
            if now - self._probed_at < _PROBE_CACHE_SECONDS:
                return self._probe_error
            try:
                with psycopg.connect(self.url, connect_timeout=PROBE_CONNECT_TIMEOUT):
                    pass
            except psycopg.Error as exc:
                self._probe_error = first_line(str(exc)) or type(exc).__name__
                self._down_at = time.perf_counter()
            else:
                self._probe_error = None
                self._down_at = float("-inf")
            self._probed_at = time.perf_counter()
            return self._probe_error

    def busy(self) -> ServiceBusyException:
        return ServiceBusyException(
            f"All {self.max_size} connections to the database {self.label} are in use",
            retry_after=1,
            error_code="DATABASE_BUSY",
            details={"database": self.label},
        )


def first_line(text: str) -> str:
    """The first non-empty line of an error text (libpq adds hints on further lines)."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def sqlalchemy_url(url: str) -> str:
    """Alembic runs on SQLAlchemy: point it at the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
