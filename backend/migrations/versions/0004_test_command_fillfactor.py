"""Leave room in test_command pages so the worker's per-command result update stays in place.

Revision ID: 0004
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # HOT updates (no index change, same page) keep the result write cheap under load.
    op.execute("ALTER TABLE test_command SET (fillfactor = 70)")


def downgrade() -> None:
    op.execute("ALTER TABLE test_command RESET (fillfactor)")
