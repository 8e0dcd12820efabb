"""Secrets out of zip files (Playwright's traces): members redacted, the zip still a zip.

A trace.zip holds `trace.trace` and `trace.network` (JSON lines: actions with their
arguments, console text, DOM snapshots, requests), `trace.stacks`, `resources/<sha1>.<ext>`
(response bodies: HTML, JSON, CSS, JS, images) and `screencast/*.jpeg`. Text members pass
through the redactor; in a binary member only the UTF-8 bytes of a secret are replaced (a
screenshot's pixels that show a secret cannot be redacted). Member names, order, compression
and times stay, so Playwright's trace viewer opens the rewritten file as before.
"""

from __future__ import annotations

import os
import stat
import tempfile
import zipfile
from pathlib import Path

from orchestrator.redaction import Redactor


def redact_zip(path: Path, redactor: Redactor) -> bool:
    """Rewrite the zip at `path` with every member redacted; True when a member changed.
    A zip with nothing to redact is left as it is (it is only read); a rewrite is atomic (a
    reader sees the old file or the new one). Raises `zipfile.BadZipFile` for a file that is
    not a zip, and leaves it alone."""
    if not redactor.needles:
        return False
    with zipfile.ZipFile(path) as source:
        if not any(_changes(source, info, redactor) for info in source.infolist()):
            return False
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(handle)
        try:
            with zipfile.ZipFile(temp, "w") as target:
                target.comment = source.comment
                for info in source.infolist():
                    target.writestr(_copy_of(info), redact_member(source.read(info), redactor))
            os.chmod(temp, stat.S_IMODE(path.stat().st_mode))
            os.replace(temp, path)
        finally:
            Path(temp).unlink(missing_ok=True)
    return True


def _changes(source: zipfile.ZipFile, info: zipfile.ZipInfo, redactor: Redactor) -> bool:
    data = source.read(info)
    return redact_member(data, redactor) is not data


def redact_member(data: bytes, redactor: Redactor) -> bytes:
    """One member's content redacted: as UTF-8 text when it is, else byte by byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return redactor.redact_bytes(data)
    redacted = redactor(text)
    return data if redacted == text else redacted.encode("utf-8")


def _copy_of(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    """A fresh entry with `info`'s name, time, compression and attributes (writing mutates
    the entry it is given, and the source's sizes and offsets no longer apply)."""
    copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
    copy.compress_type = info.compress_type
    copy.comment = info.comment
    copy.create_system = info.create_system
    copy.external_attr = info.external_attr
    return copy
