"""context history without tenant foreign key

PostgreSQL checked the history's foreign key to context_tenant row by row, doubling the time of a bulk
telemetry COPY; history rows are written only by the broker for a tenant it has just resolved and tenants are
never deleted. (On SQLite the batch mode rebuilds the table: a minute or so per ten million rows.)

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07 19:56:47.345657
"""

from __future__ import annotations

from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

CONSTRAINT = "fk_context_attribute_instance_tenant_id_context_tenant"


def upgrade() -> None:
    with op.batch_alter_table("context_attribute_instance", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f(CONSTRAINT), type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("context_attribute_instance", schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f(CONSTRAINT), "context_tenant", ["tenant_id"], ["id"])
