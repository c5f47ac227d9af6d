"""exchange answer reminders: requests and open-data applications reminded and escalated once

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07 17:20:48.969150
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cityhub.kernel.db

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


TABLES = ("exchange_request", "exchange_open_application")
COLUMNS = ("reminded_at", "escalated_at")


def upgrade() -> None:
    for table in TABLES:
        for column in COLUMNS:
            op.add_column(
                table, sa.Column(column, cityhub.kernel.db.UTCDateTime(timezone=True), nullable=True)
            )


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+): a batch copy would drop tables that grants refer to
    for table in TABLES:
        for column in COLUMNS:
            op.drop_column(table, column)
