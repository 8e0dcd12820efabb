"""The app's own tables: command types, test commands, worker heartbeats, stored config.

Revision ID: 0003
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE command_type (
            id               SERIAL PRIMARY KEY,
            domain           TEXT NOT NULL,
            name             TEXT NOT NULL,
            description      TEXT NOT NULL DEFAULT '',
            default_behavior JSONB NOT NULL DEFAULT '{"type": "success"}'::jsonb,
            created_at       TIMESTAMPTZ NOT NULL DEFAULT NOW(),
            updated_at       TIMESTAMPTZ NOT NULL DEFAULT NOW(),
            CONSTRAINT uq_command_type_domain_name UNIQUE (domain, name)
        );
        CREATE TABLE test_command (
            id               SERIAL PRIMARY KEY,
            command_id       UUID NOT NULL UNIQUE,
            command_type_id  INTEGER NOT NULL REFERENCES command_type(id) ON DELETE RESTRICT,
            payload          JSONB NOT NULL DEFAULT '{}'::jsonb,
            behavior         JSONB NOT NULL,
            correlation_id   TEXT NULL,
            test_id          TEXT NULL,
            handler_runs     INTEGER NOT NULL DEFAULT 0,
            created_at       TIMESTAMPTZ NOT NULL DEFAULT NOW(),
            processed_at     TIMESTAMPTZ NULL,
            result           JSONB NULL
        );
        CREATE INDEX ix_test_command_type ON test_command(command_type_id);
        CREATE INDEX ix_test_command_test_id ON test_command(test_id) WHERE test_id IS NOT NULL;
        CREATE TABLE worker_heartbeat (
            worker_id       TEXT PRIMARY KEY,
            pid             INTEGER NOT NULL,
            host            TEXT NOT NULL,
            domain          TEXT NOT NULL,
            concurrency     INTEGER NOT NULL,
            started_at      TIMESTAMPTZ NOT NULL,
            last_heartbeat  TIMESTAMPTZ NOT NULL,
            health          TEXT NOT NULL,
            details         JSONB NOT NULL DEFAULT '{}'::jsonb
        );
        CREATE TABLE app_config (
            key         TEXT PRIMARY KEY,
            value       JSONB NOT NULL,
            updated_at  TIMESTAMPTZ NOT NULL DEFAULT NOW()
        );
        """
    )
    # The demo's domain queue: commandbus.send() does not create queues.
    op.execute("SELECT pgmq.create('test__commands')")


def downgrade() -> None:
    op.execute("SELECT pgmq.drop_queue('test__commands')")
    op.execute("DROP TABLE app_config, worker_heartbeat, test_command, command_type")
