"""Small shared helpers of the orchestrator."""

from __future__ import annotations

import hashlib
import re
import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_slug(nodeid: str) -> str:
    """The folder name of a test's artifacts: the same one pytest-playwright uses."""
    try:
        from slugify import slugify as playwright_slugify  # python-slugify, via pytest-playwright
    except ImportError:
        return slugify(nodeid, max_length=255)
    name = playwright_slugify(nodeid)
    if len(name) < 256:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:7]
    return f"{name[:100]}-{digest}-{name[-100:]}"


def test_id_for(nodeid: str) -> str:
    """A stable, header-safe id per test: readable slug plus a short hash of the node id."""
    digest = hashlib.sha1(nodeid.encode()).hexdigest()[:8]
    return f"{slugify(nodeid.rsplit('::', maxsplit=1)[-1], max_length=60)}-{digest}"


def slugify(text: str, max_length: int = 100) -> str:
    """A filesystem-safe slug; long names keep head and tail around a hash."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "test"
    if len(slug) <= max_length:
        return slug
    digest = hashlib.sha1(text.encode()).hexdigest()[:8]
    keep = (max_length - 10) // 2
    return f"{slug[:keep]}-{digest}-{slug[-keep:]}"
