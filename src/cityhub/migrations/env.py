"""Alembic environment: the metadata of the kernel and every installed domain."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from cityhub.domains import load_models
from cityhub.kernel.db import Base, make_engine
from cityhub.kernel.geo import POSTGIS_INDEX_PREFIX, POSTGIS_TABLES

load_models()
target_metadata = Base.metadata


def _compared(obj: object, name: str | None, kind: str, reflected: bool, compare_to: object) -> bool:
    """Alembic compares the models with everything but the optional PostGIS indexes and the extension's
    own table (``kernel.geo``)."""
    if not reflected:
        return True
    if kind == "index":
        return not (name or "").startswith(POSTGIS_INDEX_PREFIX)
    return not (kind == "table" and name in POSTGIS_TABLES)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=_compared,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as new_connection:
        _run(new_connection)
    engine.dispose()


run_migrations_online()
