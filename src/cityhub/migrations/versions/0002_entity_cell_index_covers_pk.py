"""the entity cell index carries the key on PostgreSQL, so a `near` cover is an index-only scan

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 16:05:00
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("context_entity", schema=None) as batch_op:
        batch_op.drop_index("ix_context_entity_cell")
        batch_op.create_index(
            "ix_context_entity_cell", ["tenant_id", "geo_cell"], unique=False, postgresql_include=["pk"]
        )


def downgrade() -> None:
    with op.batch_alter_table("context_entity", schema=None) as batch_op:
        batch_op.drop_index("ix_context_entity_cell")
        batch_op.create_index("ix_context_entity_cell", ["tenant_id", "geo_cell"], unique=False)
