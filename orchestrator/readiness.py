"""Readiness waits: objects with a deadline; their failure message is a diagnosis."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import requests
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from orchestrator.errors import StackStartError


@dataclass
class ProbeResult:
    ok: bool
    answer: str


class ServiceGone(Exception):
    """The service's process or container exited while we waited for it."""

    def __init__(self, exit_code: int | None) -> None:
        super().__init__(f"exited with code {exit_code}")
        self.exit_code = exit_code


def http_ready(url: str, timeout: float = 2.0) -> Callable[[], ProbeResult]:
    """200 from the backend's readyz (its body says database ok, nothing pending)."""

    def probe() -> ProbeResult:
        try:
            response = requests.get(url, timeout=timeout)
        except requests.RequestException as exc:
            return ProbeResult(False, f"{type(exc).__name__}: {exc}")
        body = response.text.strip()[:400]
        return ProbeResult(response.status_code == 200, f"HTTP {response.status_code} {body}")

    return probe


def workers_ready(url: str, count: int, timeout: float = 2.0) -> Callable[[], ProbeResult]:
    """At least `count` live workers in GET /api/workers."""

    def probe() -> ProbeResult:
        try:
            response = requests.get(url, timeout=timeout)
            workers = response.json().get("workers", []) if response.ok else []
        except (requests.RequestException, ValueError) as exc:
            return ProbeResult(False, f"{type(exc).__name__}: {exc}")
        live = [w for w in workers if w.get("health") != "STOPPED"]
        return ProbeResult(len(live) >= count, f"{len(live)} of {count} workers live")

    return probe


@dataclass
class Readiness:
    """Wait until `probe` says ok, failing fast when `exit_code()` reports the service died."""

    service: str
    awaited: str
    probe: Callable[[], ProbeResult]
    exit_code: Callable[[], int | None]
    log_tail: Callable[[], str]
    poll_interval: float = 0.05

    def wait(self, timeout: float) -> float:
        """Seconds it took; raises StackStartError with the last answer and the log tail."""
        started = time.perf_counter()
        last = ProbeResult(False, "no probe answer yet")

        def attempt() -> ProbeResult:
            nonlocal last
            code = self.exit_code()
            if code is not None:
                raise ServiceGone(code)
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
