"""Names shared between the orchestrator, the apps it runs and their tests: defined once here.

An app and its tests may import these; an app that must not import the orchestrator keeps
its own copies, and a test of its own pins them to this module (the demo app does).
"""

from __future__ import annotations

from typing import Final

# -- HTTP headers every client of a stack sends or reads ------------------------------------
TEST_ID_HEADER: Final = "X-Test-Id"  # the running test's id: stamped on every log record
REQUEST_ID_HEADER: Final = "X-Request-Id"  # correlation id, echoed by the app
LAST_EVENT_ID_HEADER: Final = "Last-Event-ID"  # SSE resume point

# -- environment a command run against a stack receives -------------------------------------
ENV_BACKEND_URL: Final = "STACK_BACKEND_URL"  # base URL of the app profile's web service
ENV_DATABASE_URL: Final = "STACK_DATABASE_URL"  # the stack's database, from this machine
ENV_RUN_ID: Final = "STACK_RUN_ID"
ENV_ARTIFACTS_DIR: Final = "STACK_ARTIFACTS_DIR"  # the run's artifacts folder (absolute)
ENV_LOGS_DIR: Final = "STACK_LOGS_DIR"  # where the run's harvested logs are written
ENV_PROVIDER: Final = "STACK_PROVIDER"
ENV_APP: Final = "STACK_APP"  # the app profile, `module:attr`
ENV_SHARD: Final = "STACK_SHARD"  # I/N: this leg runs shard I of N (pytest --shard)
EXPORTED_ENV: Final = (
    ENV_BACKEND_URL,
    ENV_DATABASE_URL,
    ENV_RUN_ID,
    ENV_ARTIFACTS_DIR,
    ENV_LOGS_DIR,
    ENV_PROVIDER,
    ENV_APP,
)

# Carried by every process and container of a run, so `clean` can tell whose they are and
# whether their owner (host/pid/start ticks of the orchestrator) still lives.
RUN_ENV: Final = "CI_STACK_RUN_ID"
OWNER_ENV: Final = "CI_STACK_OWNER"
RUN_LABEL: Final = "ci-stack.run-id"
OWNER_LABEL: Final = "ci-stack.owner"

# -- the live log stream (SSE) an app may offer ------------------------------------------------
EVENT_CONNECTION_OPEN: Final = "connection_open"
EVENT_LOG: Final = "log"
EVENT_HEARTBEAT: Final = "heartbeat"
EVENT_DROPPED: Final = "dropped"
EVENT_CONNECTION_CLOSE: Final = "connection_close"
LOG_STREAM_EVENTS: Final = (
    EVENT_CONNECTION_OPEN,
    EVENT_LOG,
    EVENT_HEARTBEAT,
    EVENT_DROPPED,
    EVENT_CONNECTION_CLOSE,
)

# -- the browser console events an app logs (one JSON object per console call) ---------------
# A request the page made: when it was sent (ISO 8601 UTC, e.g. `new Date().toISOString()`
# taken before `fetch`); the timeline places the request there, not where it was logged.
CONSOLE_SENT_AT: Final = "sent_at"

# -- structured log records (the stream's `log` data, JSON lines on stdout) -------------------
RECORD_KEYS: Final = (
    "timestamp",
    "level",
    "logger",
    "message",
    "correlation_id",
    "test_id",
    "extra",
)
RECORD_TEST_ID: Final = "test_id"
RECORD_CORRELATION_ID: Final = "correlation_id"
RECORD_RUN_ID: Final = "run_id"  # added by the harvester to every record it writes
