"""Writing many rows at once in the session's transaction: COPY on PostgreSQL, one prepared statement on
SQLite — for the demo city and for loads of department data alike; and reading a query's rows out as CSV
text that PostgreSQL writes itself (COPY ... TO STDOUT)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Column, ColumnDefault, Integer, Select, Table, insert, text
from sqlalchemy.orm import Session

from cityhub.kernel.db import Base, is_postgres


def bulk_insert(session: Session, table: type[Base] | Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert many rows (all with the same keys) in the session's transaction.

    SQLite: one prepared statement executed for every row. PostgreSQL: ``COPY ... FROM STDIN``, with the
    columns' Python defaults and type conversions applied as an INSERT would; when rows carry their
    ``id``, the id sequence is moved past the largest.
    """
    if not rows:
        return
    target = table_of(table)
    if not is_postgres(session):
        session.execute(insert(target), list(rows))
        return
    _copy_rows(session, target, rows)
    if "id" in rows[0] and isinstance(target.c.id.type, Integer):
        name = target.name
        session.execute(
            text(f"SELECT setval(pg_get_serial_sequence(:name, 'id'), (SELECT max(id) FROM {name}))"),  # noqa: S608
            {"name": name},
        )


def _copy_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    dialect = session.get_bind().dialect
    given = list(rows[0])
    defaults = [
        column
        for column in table.columns
        if column.name not in rows[0] and isinstance(column.default, ColumnDefault)
    ]
    columns = [table.c[name] for name in given] + defaults
    processors = [column.type.dialect_impl(dialect).bind_processor(dialect) for column in columns]
    preparer = dialect.identifier_preparer
    names = ", ".join(preparer.quote(column.name) for column in columns)
    statement = f"COPY {preparer.format_table(table)} ({names}) FROM STDIN"
    raw = session.connection().connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            values = [row[name] for name in given] + [_default_value(column) for column in defaults]
            copy.write_row(
                [
                    value if processor is None or value is None else processor(value)
                    for value, processor in zip(values, processors, strict=True)
                ]
            )


def _default_value(column: Column[Any]) -> Any:
    """What an INSERT would put in a column left out: its Python default (callables get no context)."""
    default = column.default
    assert isinstance(default, ColumnDefault)
    return default.arg(None) if default.is_callable else default.arg


def table_of(table: type[Base] | Table) -> Table:
    if isinstance(table, Table):
        return table
    found = table.__table__
    assert isinstance(found, Table)
    return found


def insert_prepared(
    session: Session, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert rows whose values are already what the database stores (JSON as its text, no defaults to
    apply): the fast path of large loads, with no type processing per value."""
    if not rows:
        return
    preparer = session.get_bind().dialect.identifier_preparer
    names = ", ".join(preparer.quote(name) for name in columns)
    target = preparer.format_table(table)
    connection = session.connection()
    if not is_postgres(session):
        marks = ", ".join("?" for _ in columns)
        connection.exec_driver_sql(f"INSERT INTO {target} ({names}) VALUES ({marks})", list(rows))  # noqa: S608
        return
    raw = connection.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(f"COPY {target} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def copied_csv(session: Session, statement: Select[Any], chunk_bytes: int = 256 * 1024) -> Iterator[bytes]:
    """The rows of ``statement`` as CSV text (no header, ``\\n`` line ends, NULL as an empty field), written
    by PostgreSQL's ``COPY (query) TO STDOUT``: no row passes through Python objects. PostgreSQL sends a
    row at a time, so rows are gathered into chunks of about ``chunk_bytes`` (a write per row would be the
    cost). PostgreSQL only; psycopg binds the statement's parameters on the client (COPY takes none)."""
    compiled = statement.compile(bind=session.get_bind(), compile_kwargs={"render_postcompile": True})
    raw = session.connection().connection.driver_connection
    assert raw is not None
    gathered = bytearray()
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY ({compiled}) TO STDOUT WITH (FORMAT csv)", compiled.params) as copy,
    ):
        for row in copy:
            gathered += row
            if len(gathered) >= chunk_bytes:
                yield bytes(gathered)
                gathered.clear()
    yield bytes(gathered)
