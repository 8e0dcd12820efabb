"""Bulk payloads stored once, deliveries counted per command, domains that fit PGMQ.

- `command_payload`: a bulk's shared payload, stored once; its test_command rows point at it
  (`payload_id`, with `payload` NULL) instead of each holding a copy.
- `test_command.deliveries`: how often a handler started on the command over its whole life
  (operator retries included); scripted behaviors decide by it, not by the bus's attempt.
- `command_type.domain` at most 37 characters: PGMQ's queue `<domain>__commands` allows 47.

Revision ID: 0005
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE command_payload (
            id          BIGSERIAL PRIMARY KEY,
            payload     JSONB NOT NULL,
            created_at  TIMESTAMPTZ NOT NULL DEFAULT NOW()
        );
        ALTER TABLE test_command
            ALTER COLUMN payload DROP NOT NULL,
            ADD COLUMN payload_id BIGINT NULL REFERENCES command_payload(id) ON DELETE RESTRICT,
            ADD COLUMN deliveries INTEGER NOT NULL DEFAULT 0,
            ADD CONSTRAINT ck_test_command_one_payload
                CHECK ((payload IS NULL) <> (payload_id IS NULL));
        ALTER TABLE command_type
            ADD CONSTRAINT ck_command_type_domain_fits_pgmq CHECK (char_length(domain) <= 37);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE command_type DROP CONSTRAINT ck_command_type_domain_fits_pgmq;
        UPDATE test_command t SET payload = p.payload
            FROM command_payload p WHERE p.id = t.payload_id;
        ALTER TABLE test_command
            DROP CONSTRAINT ck_test_command_one_payload,
            DROP COLUMN deliveries,
            DROP COLUMN payload_id,
            ALTER COLUMN payload SET NOT NULL;
        DROP TABLE command_payload;
        """
    )
