"""voice: the assessment's rollup of closed tickets, counted from the existing ones; the live pass's index
replaces the whole-cohort ones

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07 16:24:39.857320
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "voice_assessment_community_rollup",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("org_unit_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("organization_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("closed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "org_unit_id", "organization_id", name=op.f("pk_voice_assessment_community_rollup")
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "voice_assessment_rollup",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("organization_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("category_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("closed", sa.Integer(), nullable=False),
        sa.Column("sign_due", sa.Integer(), nullable=False),
        sa.Column("signed_in_time", sa.Integer(), nullable=False),
        sa.Column("judged", sa.Integer(), nullable=False),
        sa.Column("answered_in_time", sa.Integer(), nullable=False),
        sa.Column("due", sa.Integer(), nullable=False),
        sa.Column("callbacks", sa.Integer(), nullable=False),
        sa.Column("satisfied", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "organization_id", "category_id", "type", name=op.f("pk_voice_assessment_rollup")
        ),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("voice_ticket", schema=None) as batch_op:
        batch_op.create_index(
            "ix_voice_ticket_assessment_live",
            [
                "status",
                "created_at",
                "organization_id",
                "category_id",
                "type",
                "org_unit_id",
                "sign_due_at",
                "signed_at",
                "deadline_at",
                "replied_at",
                "satisfaction",
            ],
            unique=False,
        )
    # The backfill is the service's own rebuild (set-based, one INSERT … SELECT … GROUP BY per local day over
    # the index just created), so the counts are exactly those the closing transactions keep. It reads only
    # voice_ticket columns that exist since 0008.
    from cityhub.domains.voice.service import rollup
    from cityhub.kernel.settings import get_settings

    with Session(bind=op.get_bind()) as session:
        rollup.rebuild(session, get_settings().timezone)
    with op.batch_alter_table("voice_ticket", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_voice_ticket_assessment"))
        batch_op.drop_index(batch_op.f("ix_voice_ticket_received"))


def downgrade() -> None:
    with op.batch_alter_table("voice_ticket", schema=None) as batch_op:
        batch_op.drop_index("ix_voice_ticket_assessment_live")
        batch_op.create_index(
            batch_op.f("ix_voice_ticket_received"),
            ["created_at", "status", "organization_id", "org_unit_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_voice_ticket_assessment"),
            [
                "organization_id",
                "category_id",
                "type",
                "created_at",
                "status",
                "sign_due_at",
                "signed_at",
                "deadline_at",
                "replied_at",
                "satisfaction",
            ],
            unique=False,
        )
    op.drop_table("voice_assessment_rollup")
    op.drop_table("voice_assessment_community_rollup")
