"""Text helpers shared by the summary and the report: shortening, quoting, fences, badges."""

from __future__ import annotations

import re
from html import escape


def shorten(text: str, limit: int) -> str:
    """The first line of `text`, at most `limit` characters, cut between words (never inside
    one), with … when something was left off."""
    lines = text.strip().splitlines()
    first = " ".join(lines[0].split()) if lines else ""
    if len(first) <= limit and len(lines) <= 1:
        return first
    if len(first) <= limit:
        return first + " …"
    cut = first[: limit + 1]
    space = cut.rfind(" ")
    head = cut[:space] if space > limit // 2 else first[:limit]  # one very long word: cut it
    return head.rstrip() + " …"


def keep_last_lines(text: str, limit: int) -> tuple[str, int]:
    """At most `limit` characters of whole lines from the end (where a failure's message and
    location are); and how many lines were left off before them (0 when all of it fits)."""
    if len(text) <= limit:
        return text, 0
    kept = text[-limit:]
    kept = kept[kept.find("\n") + 1 :] if "\n" in kept else kept
    left = text[: len(text) - len(kept)].count("\n")
    return kept, left


def fence(text: str, info: str = "text") -> str:
    """A fenced code block that `text` cannot close: longer than any backtick run in it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    marker = "`" * max(3, longest + 1)
    return f"{marker}{info}\n{text.rstrip()}\n{marker}"


def code_span(text: str) -> str:
    """Inline code that shows `text` as is (backticks inside included)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def shell_quote(text: str) -> str:
    """`text` in single quotes for a POSIX shell (what the rerun command shows)."""
    return "'" + text.replace("'", "'\"'\"'") + "'"


def rerun_command(prefix: str, nodeid: str) -> str:
    return f"{prefix} {shell_quote(nodeid)}"


def badge(word: str) -> str:
    """The report's coloured chip for an outcome or verdict (CSS class `s-<word>`)."""
    return f'<span class="badge s-{escape(word)}">{escape(word)}</span>'
