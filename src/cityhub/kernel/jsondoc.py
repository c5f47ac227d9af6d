"""Members of JSON documents in SQL, the same on SQLite and PostgreSQL: a top-level member as a typed value
(to sort by), as text (to search in), and the elements of a JSON array (to test membership and count them).

PostgreSQL reads the document as JSONB (a JSON column is cast; a JSONB one is left as it is) with ``->``,
``->>`` and ``jsonb_typeof``; SQLite reads it with ``json_extract`` and ``json_type``. A member read as a
kind it does not hold is NULL, so a number stored as text never sorts among numbers and a stray value never
makes PostgreSQL's cast fail the whole query. Strings compare by code point on both databases (``COLLATE
"C"`` on PostgreSQL, SQLite's BINARY), so an order does not depend on the server's locale.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Numeric,
    String,
    TableValuedAlias,
    Text,
    case,
    cast,
    exists,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB

Kind = Literal["string", "number", "boolean"]
_SQLITE_TYPES: dict[Kind, tuple[str, ...]] = {
    "string": ("text",),
    "number": ("integer", "real"),
    "boolean": ("true", "false"),
}


def typed_member(document: Any, name: str, kind: Kind, dialect: str) -> ColumnElement[Any]:
    """The member ``name`` as an SQL value of ``kind``; NULL when it is missing or of another JSON kind."""
    if dialect == "postgresql":
        return _postgres_member(document, name, kind)
    path = _sqlite_path(name)
    return case(
        (func.json_type(document, path).in_(_SQLITE_TYPES[kind]), func.json_extract(document, path)),
        else_=None,
    )


def _postgres_member(document: Any, name: str, kind: Kind) -> ColumnElement[Any]:
    binary = cast(document, JSONB)
    text = _postgres_text(binary, name)
    value = {
        "string": text.collate("C"),
        "number": cast(text, Numeric),  # exact, and without the 32-bit limit of INTEGER
        "boolean": cast(text, Boolean),
    }[kind]
    return case((func.jsonb_typeof(binary.op("->")(name)) == kind, value), else_=None)


def member_text(document: Any, name: str, dialect: str) -> ColumnElement[str]:
    """Any scalar member as the text JSON writes it (``true``, ``0.21``, ``西湖区``); NULL when missing."""
    if dialect == "postgresql":
        return _postgres_text(cast(document, JSONB), name)
    path = _sqlite_path(name)
    return case(
        (func.json_type(document, path).in_(_SQLITE_TYPES["boolean"]), func.json_type(document, path)),
        else_=cast(func.json_extract(document, path), String),
    )


def member_contains(document: Any, name: str, word: str, dialect: str) -> ColumnElement[bool]:
    """The member's text holds ``word``, ignoring the case of Latin letters."""
    pattern = "%" + escape_like(word.lower()) + "%"
    return func.lower(member_text(document, name, dialect)).like(pattern, escape="\\")


def escape_like(text: str) -> str:
    """``text`` matched literally inside a LIKE pattern whose escape character is a backslash."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def array_elements(array: Any, dialect: str) -> TableValuedAlias:
    """The elements of a JSON array of strings as a table with one column, ``value`` (join it with
    ``ON true``: both databases let a function in FROM read the columns of the tables before it)."""
    if dialect == "postgresql":
        return func.jsonb_array_elements_text(cast(array, JSONB)).table_valued("value")
    return func.json_each(array).table_valued("value")


def array_contains(array: Any, value: str, dialect: str) -> ColumnElement[bool]:
    """The JSON array of strings holds ``value`` (exactly)."""
    elements = array_elements(array, dialect)
    return exists(select(literal_column("1")).select_from(elements).where(elements.c.value == value))


def _postgres_text(binary: Any, name: str) -> ColumnElement[str]:
    return binary.op("->>", return_type=Text)(name)


def _sqlite_path(name: str) -> str:
    if '"' in name or "\\" in name:
        raise ValueError(f"a member name that a JSON path cannot quote: {name!r}")
    return f'$."{name}"'
