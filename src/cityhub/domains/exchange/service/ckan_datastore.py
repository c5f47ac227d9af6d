"""CKAN's ``datastore_search`` over the current version of an open resource: filters, full-text ``q``, fields,
sort and paging, all in SQL over the rows' JSON documents, typed by the resource's data items (a number
filter or sort compares numbers, never their text).

The filters are the row filter of an anonymous open-data grant (ADR 0006), compiled by the same code as
every consumer's grant (``grants.row_conditions``): one compiler decides which rows a filter lets through.
Rows are numbered from 1 in file order; that number is CKAN's ``_id``.

Everything is de-identified by the resource's open rules (``opening``): a suppressed item is no field at all
(in ``fields``, ``filters``, ``q`` and ``sort`` it is unknown), a generalised one is text with its public
value, sorted by that value, and never filtered or searched on. Each search counts in the open data's reads.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, false, func, or_, select
from sqlalchemy.orm import Session

from cityhub.domains.exchange import schemas
from cityhub.domains.exchange.models import Resource, Row, Version
from cityhub.domains.exchange.service import ckan_catalogue, opening
from cityhub.domains.exchange.service.opening import Opening
from cityhub.kernel import jsondoc
from cityhub.kernel.errors import ValidationProblem
from cityhub.kernel.i18n import gettext as _

ROW_ID = "_id"
DEFAULT_LIMIT = 100
MAX_LIMIT = 32_000
# A data item's type -> the datastore's name for it, and the JSON kind its values are stored as.
CKAN_TYPES = {
    "string": "text",
    "integer": "int",
    "number": "numeric",
    "boolean": "bool",
    "date": "date",
    "datetime": "timestamp",
}
# CKAN's filter operators -> the grants' row-filter operators.
FILTER_OPERATORS = {"eq": "eq", "in": "in", "gt": "gt", "gte": "ge", "lt": "lt", "lte": "le"}


@dataclass
class DatastoreQuery:
    resource_id: str
    filters: dict[str, Any] = field(default_factory=dict)
    q: str | dict[str, Any] | None = None
    fields: list[str] | None = None
    sort: str | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    include_total: bool = True


def datastore_search(session: Session, query: DatastoreQuery) -> dict[str, Any]:
    resource, version = ckan_catalogue.open_download(session, query.resource_id)
    public = opening.opening_of(resource)
    items = {item.name: item for item in public.items}
    names = _chosen_fields(query.fields, items)
    conditions = [
        *_filter_conditions(resource, public, query.filters, session.get_bind().dialect.name),
        *_text_conditions(session, public, query.q),
    ]
    rows = session.execute(
        select(Row.row_no, Row.data)
        .where(Row.version_id == version.id, *conditions)
        .order_by(*_order(session, query.sort, public))
        .offset(query.offset)
        .limit(query.limit)
    ).all()
    records = []
    for row_no, data in rows:
        row = public.row(data)
        records.append({name: row_no if name == ROW_ID else row[name] for name in names})
    opening.count_read(session, resource.id, "ckan", len(records))
    result: dict[str, Any] = {
        "resource_id": query.resource_id,
        "fields": [_field(name, items) for name in names],
        "records": records,
        "records_format": "objects",
        "limit": query.limit,
        "offset": query.offset,
        "include_total": query.include_total,
    }
    if query.include_total:
        result["total"] = _total(session, version, conditions)
    return result


def _field(name: str, items: dict[str, schemas.OpenItemOut]) -> dict[str, Any]:
    if name == ROW_ID:
        return {"id": ROW_ID, "type": "int"}
    item = items[name]
    return {"id": name, "type": CKAN_TYPES[item.type], "info": {"label": item.title}}


def _chosen_fields(requested: list[str] | None, items: dict[str, Any]) -> list[str]:
    """The fields to return, in the order asked (all of them, ``_id`` first, by default)."""
    if requested is None:
        return [ROW_ID, *items]
    _check_known("fields", requested, [ROW_ID, *items])
    return list(dict.fromkeys(requested))


def _check_known(parameter: str, names: Iterable[str], known: Collection[str]) -> None:
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValidationProblem(
            _("Not fields of this resource: %(names)s", names=", ".join(unknown)), field=parameter
        )


def _total(session: Session, version: Version, conditions: list[ColumnElement[bool]]) -> int:
    if not conditions:
        return version.row_count  # counted when the version was loaded
    statement = select(func.count()).select_from(Row).where(Row.version_id == version.id, *conditions)
    return int(session.scalar(statement) or 0)


# -- filters -------------------------------------------------------------------------------------------------


def _filter_conditions(
    resource: Resource, public: Opening, filters: dict[str, Any], dialect: str
) -> list[ColumnElement[bool]]:
    """``{field: value | [values] | {operator: value}}`` as SQL, through the grants' row-filter compiler (on
    public data items shown as they are: ``_id`` is no data item, so rows are sorted and paged by it, not
    filtered; a generalised item's raw values must not be probed)."""
    _check_known("filters", filters, public.types)
    opening.check_filterable(public, list(filters), "filters")
    row_filter = [condition for name, value in filters.items() for condition in _conditions(name, value)]
    try:
        return opening.conditions_of(resource, row_filter, dialect)
    except ValidationProblem as problem:  # a value that does not fit its field's type
        raise ValidationProblem(problem.detail, field="filters") from problem


def _conditions(name: str, value: Any) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return [{"field": name, "op": "in", "value": value}]
    if not isinstance(value, dict):
        return [{"field": name, "op": "eq", "value": value}]
    unknown = [operator for operator in value if operator not in FILTER_OPERATORS]
    if unknown or not value:
        raise ValidationProblem(
            _(
                "%(field)s: filter operators are %(operators)s.",
                field=name,
                operators=", ".join(FILTER_OPERATORS),
            ),
            field="filters",
        )
    return [{"field": name, "op": FILTER_OPERATORS[op], "value": each} for op, each in value.items()]


# -- full text -----------------------------------------------------------------------------------------------


def _text_conditions(
    session: Session, public: Opening, q: str | dict[str, Any] | None
) -> list[ColumnElement[bool]]:
    """Every word of ``q`` in some public field shown as it is (``{field: words}``: in that field), as a
    substring ignoring the case of Latin letters (Chinese has no spaces between words to match whole words
    by)."""
    if not q:
        return []
    dialect = session.get_bind().dialect.name
    if isinstance(q, dict):
        _check_known("q", q, public.types)
        opening.check_filterable(public, list(q), "q")
        return [
            jsondoc.member_contains(Row.data, name, word, dialect)
            for name, text in q.items()
            for word in str(text).split()
        ]
    return [
        or_(false(), *(jsondoc.member_contains(Row.data, name, word, dialect) for name in public.plain))
        for word in q.split()
    ]


# -- order ---------------------------------------------------------------------------------------------------


def _order(session: Session, sort: str | None, public: Opening) -> list[Any]:
    """CKAN's ``"field [asc|desc], ..."``; empty values last going up, first going down (as PostgreSQL
    orders them, made explicit for SQLite); the row number breaks ties, so pages never overlap. A generalised
    field sorts by its public value (its raw values' order would tell more)."""
    dialect = session.get_bind().dialect.name
    order = []
    for name, descending in ckan_catalogue.sort_clauses(sort or "", [ROW_ID, *public.names]):
        for column in [Row.row_no] if name == ROW_ID else public.sql_keys(name, dialect):
            order.append(column.desc().nulls_first() if descending else column.asc().nulls_last())
    return [*order, Row.row_no]
