"""Process-wide logging: JSON lines on stdout, with correlation and test ids on every record."""

from __future__ import annotations

import json
import logging
import sys

from backend.utils.correlation import install_log_record_factory
from backend.utils.log_capture import record_extras, utc_stamp

_encode = json.JSONEncoder(default=str).encode  # one encoder (json.dumps builds one per call)
_quote = json.encoder.encode_basestring_ascii  # C, as json.dumps uses


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line, the same shape (and text) as json.dumps(record_to_dict()).

    Written out field by field: a worker formats two records per command, and building the
    dict for the generic encoder cost more than the rest of the record's way to stdout."""

    def format(self, record: logging.LogRecord) -> str:
        extra = record_extras(record)
        return (
            f'{{"timestamp": "{utc_stamp(record.created)}", "level": {_quote(record.levelname)},'
            f' "logger": {_quote(record.name)}, "message": {_quote(record.getMessage())},'
            f' "correlation_id": {_value(getattr(record, "correlation_id", None))},'
            f' "test_id": {_value(getattr(record, "test_id", None))},'
            f' "extra": {_object(extra)}}}'
        )


def _object(values: dict[str, object]) -> str:
    """`values` as json.dumps writes it; by hand when every value is a string (the usual)."""
    if not values:
        return "{}"
    if all(type(value) is str for value in values.values()):
        fields = ", ".join(f"{_quote(key)}: {_quote(str(value))}" for key, value in values.items())
        return f"{{{fields}}}"
    return _encode(values)


def _value(value: object) -> str:
    if value is None:
        return "null"
    return _quote(value) if type(value) is str else _encode(value)


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
