"""Text PostgreSQL cannot store: NUL characters and lone UTF-16 surrogates.

JSON allows both (`"\\u0000"`, `"\\ud800"`); PostgreSQL's text and jsonb reject them. Requests
carrying them are refused up front with a 400 naming the field, never a 500 from the insert.
"""

from __future__ import annotations

from typing import Any


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored, or None when it can."""
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which PostgreSQL cannot store"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        return (
            f"contains a lone surrogate (\\u{code:04x}); send valid UTF-8 text "
            "(a surrogate is only valid as half of a pair)"
        )
    return None


def find_unstorable_text(value: Any, path: str) -> tuple[str, str] | None:
    """(field path, reason) of the first string or key in `value` PostgreSQL can't store."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return where, problem
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{where}.{key}" if where else str(key)
                if isinstance(key, str):
                    problem = text_problem(key)
                    if problem:
                        return f"{where or 'body'} (a key)", problem
                stack.append((child, child_path))
        elif isinstance(item, list):
            stack.extend((child, f"{where}.{index}") for index, child in enumerate(item))
    return None
