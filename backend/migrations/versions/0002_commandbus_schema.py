"""The commandbus schema from reliable-cmd 0.2.2 (its V001 and V002 scripts, verbatim).

Revision ID: 0002
"""

from importlib.resources import files

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_SCRIPTS = ("V001__commandbus_schema.sql", "V002__add_failed_count.sql")


def upgrade() -> None:
    folder = files("commandbus") / "migrations"
    for name in _SCRIPTS:
        op.execute((folder / name).read_text())
    # V001 changes the search_path for the session; later steps expect the default.
    op.execute("SET search_path TO public")


def downgrade() -> None:
    op.execute("DROP SCHEMA IF EXISTS commandbus CASCADE")
