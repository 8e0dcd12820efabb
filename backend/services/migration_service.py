"""Alembic migrations: upgrade to head and tell which revisions are still pending.

Upgrading uses alembic (imported when called). The pending check behind readyz reads the
revision files' `revision` / `down_revision` itself: importing alembic (and SQLAlchemy) would
double the serving process's start-up. `revision_graph` is pinned to alembic's own reading
by a test.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from psycopg import Connection
from psycopg.rows import TupleRow

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection as SAConnection

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
VERSIONS_DIR = MIGRATIONS_DIR / "versions"


def alembic_config(database_url: str | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url:
        # ConfigParser treats % as interpolation; URLs may contain escaped characters.
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


@lru_cache(maxsize=1)
def revision_graph() -> dict[str, tuple[str, ...]]:
    """Each revision and the revisions it follows, from the files in VERSIONS_DIR."""
    graph: dict[str, tuple[str, ...]] = {}
    for path in sorted(VERSIONS_DIR.glob("*.py")):
        values: dict[str, object] = {}
        for node in ast.parse(path.read_text(), str(path)).body:
            target = node.targets[0] if isinstance(node, ast.Assign) else None
            if isinstance(node, ast.AnnAssign) and node.value is not None:
                target = node.target
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                values[target.id] = ast.literal_eval(node.value)  # type: ignore[attr-defined]
        revision, down = values.get("revision"), values.get("down_revision")
        if isinstance(revision, str):
            graph[revision] = (down,) if isinstance(down, str) else tuple(down or ())  # type: ignore[arg-type]
    return graph


def head_revisions() -> tuple[str, ...]:
    graph = revision_graph()
    followed = {down for downs in graph.values() for down in downs}
    return tuple(sorted(revision for revision in graph if revision not in followed))


def upgrade_to_head(database_url: str) -> None:
    """Run every pending migration against `database_url`."""
    from alembic import command

    command.upgrade(alembic_config(database_url), "head")


def upgrade_on_connection(connection: SAConnection) -> None:
    """Run migrations inside the caller's transaction (used by the testing reset)."""
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def current_revisions(conn: Connection[TupleRow]) -> set[str]:
    exists = conn.execute("SELECT to_regclass('public.alembic_version') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return set()
    return {row[0] for row in conn.execute("SELECT version_num FROM alembic_version")}


def get_pending_migrations(conn: Connection[TupleRow]) -> list[str]:
    """Revisions between the database's current state and head, oldest first."""
    graph = revision_graph()
    applied: set[str] = set()
    todo = list(current_revisions(conn))
    while todo:
        revision = todo.pop()
        if revision not in applied:
            applied.add(revision)
            todo.extend(graph.get(revision, ()))
    # Oldest first: a revision comes after every revision it follows.
    ordered: list[str] = []
    placed: set[str] = set()
    remaining = sorted(graph)
    while remaining:
        ready = [r for r in remaining if all(d in placed or d not in graph for d in graph[r])]
        if not ready:
            raise ValueError(f"the migrations in {VERSIONS_DIR} have a cycle: {remaining}")
        ordered += ready
        placed.update(ready)
        remaining = [r for r in remaining if r not in placed]
    return [revision for revision in ordered if revision not in applied]
