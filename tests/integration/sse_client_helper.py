"""The SSE client for integration tests; it lives in `orchestrator.sse_client`."""

from orchestrator.sse_client import (
    SSEClient,
    SSEEvent,
    SSEFrame,
    SSEParser,
    SSEProtocolError,
    SSEStreamClosed,
    SSETimeout,
    record_clients,
)

__all__ = [
    "SSEClient",
    "SSEEvent",
    "SSEFrame",
    "SSEParser",
    "SSEProtocolError",
    "SSEStreamClosed",
    "SSETimeout",
    "record_clients",
]
