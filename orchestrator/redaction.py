"""Secrets never reach artifacts: every written line passes through a Redactor."""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "***"


class Redactor:
    """Replaces each secret, and its URL-encoded and JSON-escaped forms, with ***."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._needles: list[str] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        if len(secret) < 4:  # too short to mask without mangling ordinary text
            return
        forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
        for form in forms:
            if form not in self._needles:
                self._needles.append(form)
        self._needles.sort(key=len, reverse=True)

    @property
    def needles(self) -> tuple[str, ...]:
        """Every string it replaces (each secret and its encoded forms), longest first."""
        return tuple(self._needles)

    def __call__(self, text: str) -> str:
        for needle in self._needles:
            if needle in text:
                text = text.replace(needle, MASK)
        return text

    def redact_bytes(self, data: bytes) -> bytes:
        """`data` with the UTF-8 bytes of every needle replaced (for content that is not
        UTF-8 text as a whole)."""
        for needle in self._needles:
            encoded = needle.encode("utf-8", "surrogatepass")
            if encoded in data:
                data = data.replace(encoded, MASK.encode())
        return data
