"""market: a PostGIS nearest-neighbour index of the listed stores, where PostGIS is available

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 13:00:00

PostGIS is an optional accelerator: on SQLite, or on a PostgreSQL server without the extension available, this
does nothing and the nearby search keeps to its portable H3 path. The index is on an expression of the
columns every store has, so the tables are the same with and without PostGIS (see ``kernel.geo``).
"""

from __future__ import annotations

from alembic import op

from cityhub.kernel.geo import create_postgis_point_index, drop_postgis_point_index

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

INDEX = "postgis_market_store_geog"


def upgrade() -> None:
    create_postgis_point_index(op.get_bind(), INDEX, "market_store", where="listed")


def downgrade() -> None:
    drop_postgis_point_index(op.get_bind(), INDEX)
