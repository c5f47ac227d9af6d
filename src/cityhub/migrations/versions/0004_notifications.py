"""notifications: the inbox, channel preferences by topic and one webhook per account (identity)

Revision ID: 0004_notifications
Revises: 0003
Create Date: 2026-11-22 21:18:24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cityhub.kernel.db

revision = "0004_notifications"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("link", sa.String(length=500), nullable=True),
        sa.Column("created_at", cityhub.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("read_at", cityhub.kernel.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["identity_account.id"],
            name=op.f("fk_identity_notification_account_id_identity_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_notification")),
    )
    with op.batch_alter_table("identity_notification", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identity_notification_account_id"), ["account_id"], unique=False)

    op.create_table(
        "identity_notification_preference",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("email", sa.Boolean(), nullable=False),
        sa.Column("webhook", sa.Boolean(), nullable=False),
        sa.Column("updated_at", cityhub.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["identity_account.id"],
            name=op.f("fk_identity_notification_preference_account_id_identity_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_notification_preference")),
        sa.UniqueConstraint(
            "account_id", "topic", name=op.f("uq_identity_notification_preference_account_id_topic")
        ),
    )
    op.create_table(
        "identity_notification_webhook",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("created_at", cityhub.kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["identity_account.id"],
            name=op.f("fk_identity_notification_webhook_account_id_identity_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_notification_webhook")),
        sa.UniqueConstraint("account_id", name=op.f("uq_identity_notification_webhook_account_id")),
    )


def downgrade() -> None:
    op.drop_table("identity_notification_webhook")
    op.drop_table("identity_notification_preference")
    with op.batch_alter_table("identity_notification", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_notification_account_id"))

    op.drop_table("identity_notification")
