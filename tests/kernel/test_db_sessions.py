"""Connection set-up of the two supported databases."""

from __future__ import annotations

from sqlalchemy import text

from cityhub.kernel.db import Database


def test_connections_are_set_up_for_their_database(database: Database) -> None:
    with database.engine.connect() as connection:
        if database.dialect == "postgresql":
            # generic plans of prepared statements were 10-50x slower for the keyset-paged entity scans
            assert connection.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
        else:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
