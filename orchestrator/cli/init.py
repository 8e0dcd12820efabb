"""`init`: placeholder."""

from typing import Any


def register(commands: Any) -> None:
    pass
