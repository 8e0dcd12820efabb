"""Give the bus library's own log lines the ids of the command they are about.

reliable-cmd logs "... (command_id=<uuid>, ...)" outside our handler, so its records carry no
correlation or test id. The worker remembers each command's ids as soon as it reads the message
(CommandService puts them in the message's data) and again in the handler; this filter fills
them in.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

# The library writes "(command_id=<uuid>, ..." into its messages: find that, no regex.
_MARKER = "command_id="
_UUID_LENGTH = 36


def command_id_in(message: str) -> str | None:
    """The command id after `command_id=` in a library message, or None."""
    start = message.find(_MARKER)
    if start < 0:
        return None
    begin = start + len(_MARKER)
    candidate = message[begin : begin + _UUID_LENGTH]
    if len(candidate) != _UUID_LENGTH:
        return None
    shaped = candidate[8] == candidate[13] == candidate[18] == candidate[23] == "-"
    return candidate if shaped else None


class CommandIds:
    """A bounded map command id → (correlation id, test id)."""

    def __init__(self, capacity: int = 20_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, tuple[str | None, str | None]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, command_id: str, correlation_id: str | None, test_id: str | None) -> None:
        with self._lock:
            self._ids[command_id] = (correlation_id, test_id)
            self._ids.move_to_end(command_id)
            while len(self._ids) > self.capacity:
                self._ids.popitem(last=False)

    def remember_message(self, message: dict[str, Any]) -> None:
        """Learn the ids a bus message carries in `data.ids` (messages of other senders don't)."""
        command_id = message.get("command_id")
        data = message.get("data")
        ids = data.get("ids") if isinstance(data, dict) else None
        if command_id and isinstance(ids, dict):
            self.remember(str(command_id), ids.get("correlation_id"), ids.get("test_id"))

    def lookup(self, command_id: str) -> tuple[str | None, str | None] | None:
        # A plain dict read is atomic under the GIL; only writers need the lock.
        return self._ids.get(command_id)


class CommandContextFilter(logging.Filter):
    """Adds command_id, correlation_id and test_id to records that mention a known command."""

    def __init__(self, ids: CommandIds) -> None:
        super().__init__()
        self.ids = ids

    def filter(self, record: logging.LogRecord) -> bool:
        command_id = getattr(record, "command_id", None)
        if command_id is None:
            command_id = command_id_in(record.getMessage())
            if command_id is None:
                return True
        record.command_id = str(command_id)
        known = self.ids.lookup(str(command_id))
        if known is None:
            return True
        if getattr(record, "correlation_id", None) is None:
            record.correlation_id = known[0]
        if getattr(record, "test_id", None) is None:
            record.test_id = known[1]
        return True
