"""Readiness waits: objects with a deadline; their failure message is a diagnosis."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from orchestrator.errors import StackStartError, StartAborted
from orchestrator.spec import HttpJudge, status_200


@dataclass
class ProbeResult:
    ok: bool
    answer: str


ProbeFn = Callable[[], ProbeResult]


class ServiceGone(Exception):
    """The service's process or container exited while we waited for it."""

    def __init__(self, exit_code: int | None) -> None:
        super().__init__(f"exited with code {exit_code}")
        self.exit_code = exit_code


def http_ready(url: str, judge: HttpJudge = status_200, timeout: float = 2.0) -> ProbeFn:
    """GET `url`; `judge(status, body)` says whether that answer means ready."""

    def probe() -> ProbeResult:
        try:
            response = requests.get(url, timeout=timeout)
        except requests.RequestException as exc:
            return ProbeResult(False, f"{type(exc).__name__}: {exc}")
        ok, answer = judge(response.status_code, response.text)
        return ProbeResult(ok, answer)

    return probe


def postgres_ready(target: str | Mapping[str, Any], extensions: tuple[str, ...] = ()) -> ProbeFn:
    """Connects (a URL or conninfo keywords); with `extensions`, checks each can be created."""
    dsn, keywords = (target, {}) if isinstance(target, str) else ("", dict(target))

    def probe() -> ProbeResult:
        import psycopg

        try:
            with psycopg.connect(dsn, connect_timeout=2, autocommit=True, **keywords) as connection:
                rows = connection.execute(
                    "SELECT name FROM pg_available_extensions WHERE name = ANY(%s)",
                    [list(extensions)],
                ).fetchall()
        except psycopg.Error as exc:
            return ProbeResult(False, f"{type(exc).__name__}: {str(exc).strip()}")
        missing = sorted(set(extensions) - {row[0] for row in rows})
        if missing:
            return ProbeResult(False, f"connected, but {', '.join(missing)} not available")
        return ProbeResult(
            True, "connected" + (f"; {', '.join(extensions)} available" if extensions else "")
        )

    return probe


def job_done(exit_code: Callable[[], int | None]) -> tuple[ProbeFn, Callable[[], int | None]]:
    """(probe, failure) for a one-shot job: ready on exit 0, failed on any other exit."""

    def probe() -> ProbeResult:
        code = exit_code()
        return ProbeResult(code == 0, "still running" if code is None else f"exit code {code}")

    def failure() -> int | None:
        code = exit_code()
        return None if code in (None, 0) else code

    return probe, failure


@dataclass
class Readiness:
    """Wait until `probe` says ok, failing fast when `exit_code()` reports the service died."""

    service: str
    awaited: str
    probe: Callable[[], ProbeResult]
    exit_code: Callable[[], int | None]
    log_tail: Callable[[], str]
    poll_interval: float = 0.05
    abort: Callable[[], str | None] = lambda: (
        None
    )  # a reason to give up now (e.g. a sibling failed)

    def wait(self, timeout: float) -> float:
        """Seconds it took; raises StackStartError with the last answer and the log tail."""
        started = time.perf_counter()
        last = ProbeResult(False, "no probe answer yet")

        def attempt() -> ProbeResult:
            nonlocal last
            code = self.exit_code()
            if code is not None:
                raise ServiceGone(code)
            reason = self.abort()
            if reason is not None:
                raise StartAborted(self.service, self.awaited, reason)
            last = self.probe()
            return last

        retrying = Retrying(
            stop=stop_after_delay(timeout),
            wait=wait_fixed(self.poll_interval),
            retry=retry_if_result(lambda result: not result.ok),
            reraise=False,
        )
        try:
            retrying(attempt)
        except ServiceGone as gone:
            raise StackStartError(
                self.service, self.awaited, last.answer, self.log_tail(), gone.exit_code
            ) from None
        except RetryError:
            raise StackStartError(
                self.service,
                f"{self.awaited} (timed out after {timeout:.0f}s)",
                last.answer,
                self.log_tail(),
            ) from None
        return time.perf_counter() - started
