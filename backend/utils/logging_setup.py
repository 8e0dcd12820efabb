"""Process-wide logging: JSON lines on stdout, with correlation and test ids on every record."""

from __future__ import annotations

import json
import logging
import sys

from backend.utils.correlation import install_log_record_factory
from backend.utils.log_capture import record_to_dict


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line, the same shape the testing log stream sends."""

    # One encoder for every record (json.dumps with an argument builds one per call).
    _encoder = json.JSONEncoder(default=str)

    def format(self, record: logging.LogRecord) -> str:
        return self._encoder.encode(record_to_dict(record))


def configure_logging(level: str = "INFO", json_lines: bool = True) -> None:
    """Install the record factory and one stdout handler on the root logger (idempotent)."""
    install_log_record_factory()
    root = logging.getLogger()
    root.setLevel(level)
    if any(getattr(h, "_ci_stack_stdout", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler._ci_stack_stdout = True  # type: ignore[attr-defined]
    if json_lines:
        handler.setFormatter(JsonLineFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s")
        )
    root.addHandler(handler)
    # waitress logs every queue-depth warning at WARNING; keep it but not its debug noise.
    logging.getLogger("waitress").setLevel(logging.INFO)


def skip_unused_record_fields() -> None:
    """Stop collecting what our JSON lines never show: the caller's file and line (a stack
    walk per record), thread, process and multiprocessing names.

    A worker logs two records per command; measured by benchmarks/profile_worker.py, these
    were a visible part of its CPU per command. The switches are the ones the Logging HOWTO
    lists under "Optimization". Call once at process start (the worker does); process-wide.
    """
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # the HOWTO's switch for findCaller
