"""Alembic migrations: upgrade to head and tell which revisions are still pending."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from psycopg import Connection
from psycopg.rows import TupleRow
from sqlalchemy.engine import Connection as SAConnection

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url:
        # ConfigParser treats % as interpolation; URLs may contain escaped characters.
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


@lru_cache(maxsize=1)
def _script_directory() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revisions() -> tuple[str, ...]:
    return tuple(_script_directory().get_heads())


def upgrade_to_head(database_url: str) -> None:
    """Run every pending migration against `database_url`."""
    command.upgrade(alembic_config(database_url), "head")


def upgrade_on_connection(connection: SAConnection) -> None:
    """Run migrations inside the caller's transaction (used by the testing reset)."""
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
    script = _script_directory()
    current = current_revisions(conn)
    applied: set[str] = set()
    for rev in current:
        applied.update(r.revision for r in script.iterate_revisions(rev, "base"))
    pending = [
        r.revision for r in script.walk_revisions("base", "heads") if r.revision not in applied
    ]
    pending.reverse()
    return pending
