"""Small shared helpers of the orchestrator."""

from __future__ import annotations

import hashlib
import re
import socket
from datetime import UTC, datetime


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SLUG_READABLE_LENGTH = 80  # characters of the node id kept readable in a test's slug
SLUG_HASH_LENGTH = 10  # hex digits of the node id's hash that end every slug


def test_slug(nodeid: str) -> str:
    """The folder name of a test's artifacts (tests/<slug>/), and its anchor in the report.

    One per node id: a readable part (lower-case letters, digits and `-`, head and tail of
    long ids) followed by a hash of the whole node id, so ids that differ only in what the
    readable part drops (`[a b]`, `[a/b]`, `[A-B]`, emoji) still get their own folders, also
    on case-insensitive filesystems. At most 91 characters, never `.` or `..`.
    """
    readable = re.sub(r"[^A-Za-z0-9]+", "-", nodeid).strip("-").lower() or "test"
    if len(readable) > SLUG_READABLE_LENGTH:
        keep = (SLUG_READABLE_LENGTH - 1) // 2
        readable = f"{readable[:keep].rstrip('-')}-{readable[-keep:].lstrip('-')}"
    digest = hashlib.sha256(nodeid.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{readable}-{digest[:SLUG_HASH_LENGTH]}"


def test_id_for(nodeid: str) -> str:
    """A stable, header-safe id per test: readable slug plus a short hash of the node id."""
    digest = hashlib.sha1(nodeid.encode()).hexdigest()[:8]
    return f"{slugify(nodeid.rsplit('::', maxsplit=1)[-1], max_length=60)}-{digest}"


def attempt_test_id(nodeid: str, attempt: int) -> str:
    """The test id one attempt of a retried test sends: attempt 1 the test's own id, attempt
    N > 1 `<id>-attempt-N` (so each attempt's log records are sliced apart)."""
    base = test_id_for(nodeid)
    return base if attempt <= 1 else f"{base}-attempt-{attempt}"


# A repeat of a test (`--repeat-each`): the last part of its node id's brackets,
# `[repeat-2of5]`, or `[a-repeat-2of5]` when the test is parametrized.
REPEAT_ID = "repeat-{k}of{n}"
_REPEAT = re.compile(r"(?:\[|-)repeat-(\d+)of(\d+)\]$")


def repeat_id(k: int, n: int) -> str:
    return REPEAT_ID.format(k=k, n=n)


def split_repeat(nodeid: str) -> tuple[str, int, int] | None:
    """`(node id without the repeat, K, N)` of a repeat's node id; None for any other."""
    match = _REPEAT.search(nodeid)
    if match is None:
        return None
    head = nodeid[: match.start()]
    base = head if match.group(0).startswith("[") else head + "]"
    return base, int(match.group(1)), int(match.group(2))


def base_nodeid(nodeid: str) -> str:
    """The test's own node id: a repeat's without its repeat id, any other unchanged."""
    found = split_repeat(nodeid)
    return found[0] if found else nodeid


def slugify(text: str, max_length: int = 100) -> str:
    """A filesystem-safe slug; long names keep head and tail around a hash."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "test"
    if len(slug) <= max_length:
        return slug
    digest = hashlib.sha1(text.encode()).hexdigest()[:8]
    keep = (max_length - 10) // 2
    return f"{slug[:keep]}-{digest}-{slug[-keep:]}"


def utc_instant(stamp: str | None) -> datetime | None:
    """An ISO 8601 time (`...Z`, an offset, or none: taken as UTC) as an aware datetime;
    None for what is not one."""
    if not stamp:
        return None
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
