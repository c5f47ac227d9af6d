"""exchange: one lower-case search text per resource

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 13:45:00
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("exchange_resource", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_text", sa.Text(), server_default="", nullable=False))
    connection = op.get_bind()
    rows = connection.execute(
        sa.text("SELECT id, name, name_en, summary, code, keywords FROM exchange_resource")
    )
    for row_id, name, name_en, summary, code, keywords in rows.all():
        words = keywords if isinstance(keywords, list) else json.loads(keywords or "[]")
        text = " ".join([name, name_en or "", summary, code, *words]).lower()
        connection.execute(
            sa.text("UPDATE exchange_resource SET search_text = :text WHERE id = :id"),
            {"text": text, "id": row_id},
        )


def downgrade() -> None:
    with op.batch_alter_table("exchange_resource", schema=None) as batch_op:
        batch_op.drop_column("search_text")
