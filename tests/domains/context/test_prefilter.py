"""The q pre-filter compiled to SQL never drops an entity that Python evaluation accepts (both databases).

Random stored documents (multi-instance attributes, every attribute type, values of every JSON type, arrays,
JSON-LD ``@value`` literals, dates) and random queries: the SQL pre-filter must keep a superset of what
``qlang.evaluate`` accepts, and ``query_entities`` (pre-filter + Python) must answer exactly that set.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select

from cityhub.domains.context.models import Entity, EntityType
from cityhub.domains.context.query.prefilter import condition_of, to_sql
from cityhub.domains.context.query.qlang import (
    And,
    Boolean,
    Comparison,
    Date,
    DateTime,
    Exists,
    Expr,
    Number,
    Op,
    Or,
    Pattern,
    Range,
    Text,
    ValueList,
    ValuePath,
    evaluate,
)
from cityhub.domains.context.service.query import EntityQuery, query_entities
from cityhub.domains.context.service.tenants import find_tenant
from cityhub.kernel.db import Database, utcnow

NAMES = ("a", "b", "c")
PREFIX = "urn:test:"
STRINGS = st.sampled_from(["", "5", "x", "abc", "é", "Z", "2026-01-02", "2026-01-02T10:00:00Z", "urn:e:1"])
NUMBERS = st.one_of(
    st.integers(-5, 5), st.sampled_from([0.5, -1.5, 2.0, 2**60, 9.5e15]), st.floats(-10, 10, width=32)
)
SCALARS = st.one_of(NUMBERS, STRINGS, st.booleans())
VALUES = st.one_of(
    SCALARS,
    SCALARS,
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.builds(lambda v: {"@value": v}, SCALARS),
    st.just({"k": 1}),
)


def resolve(name: str) -> str:
    return PREFIX + name


def instance(kind: str, value: Any, dataset: str | None) -> dict[str, Any]:
    body: dict[str, Any]
    if kind == "Relationship":
        body = {"type": kind, "object": value if isinstance(value, str) and value else "urn:e:1"}
    elif kind == "GeoProperty":
        body = {"type": kind, "value": {"type": "Point", "coordinates": [1, 2]}}
    elif kind == "LanguageProperty":
        body = {"type": kind, "languageMap": {"en": str(value)}}
    else:
        body = {"type": kind, "value": value}
    if dataset:
        body["datasetId"] = dataset
    return body


ATTRIBUTE = st.lists(
    st.tuples(
        st.sampled_from(
            ["Property", "Property", "Property", "Relationship", "GeoProperty", "LanguageProperty"]
        ),
        VALUES,
    ),
    min_size=1,
    max_size=2,
).map(
    lambda items: [
        instance(kind, value, None if i == 0 else f"urn:ds:{i}") for i, (kind, value) in enumerate(items)
    ]
)
DOCUMENTS = st.dictionaries(st.sampled_from(NAMES).map(resolve), ATTRIBUTE, min_size=1, max_size=3)

LITERALS = st.one_of(
    NUMBERS.map(Number),
    NUMBERS.map(Number),
    STRINGS.map(Text),
    st.booleans().map(Boolean),
    st.just(Date(date(2026, 1, 2))),
    st.just(DateTime(datetime(2026, 1, 2, 10, tzinfo=UTC))),
)
OPERANDS = st.one_of(
    LITERALS,
    LITERALS,
    LITERALS,
    st.builds(Range, LITERALS, LITERALS),
    st.lists(LITERALS, min_size=2, max_size=3).map(lambda items: ValueList(tuple(items))),
    st.sampled_from([Pattern("^a"), Pattern("5"), Pattern("é$")]),
)
TOP_LEVEL = st.sampled_from(NAMES).map(lambda name: ValuePath((name,)))
PATHS = st.one_of(
    TOP_LEVEL,
    TOP_LEVEL,
    TOP_LEVEL,
    st.sampled_from(NAMES).map(lambda name: ValuePath((name, "observedAt"))),
    st.sampled_from(NAMES).map(lambda name: ValuePath((name,), ("k",))),
)


def comparison(path: ValuePath, op: Op, operand: Any) -> Comparison:
    if isinstance(operand, Pattern):
        op = op if op in (Op.MATCH, Op.NOT_MATCH) else Op.MATCH
    elif op in (Op.MATCH, Op.NOT_MATCH):
        op = Op.EQ
    return Comparison(path, op, operand)


TERMS = st.one_of(
    st.builds(comparison, PATHS, st.sampled_from(list(Op)), OPERANDS),
    st.builds(Exists, PATHS, st.booleans()),
)
QUERIES: st.SearchStrategy[Expr] = st.recursive(
    TERMS,
    lambda inner: st.one_of(
        st.lists(inner, min_size=2, max_size=3).map(lambda terms: And(tuple(terms))),
        st.lists(inner, min_size=2, max_size=3).map(lambda terms: Or(tuple(terms))),
    ),
    max_leaves=4,
)


def normalized(entity_id: str, attrs: dict[str, Any]) -> dict[str, Any]:
    return {"id": entity_id, **{k: v[0] if len(v) == 1 else v for k, v in attrs.items()}}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    documents=st.lists(DOCUMENTS, min_size=1, max_size=8), queries=st.lists(QUERIES, min_size=1, max_size=4)
)
def test_prefilter_keeps_every_match_and_the_query_is_exact(
    database: Database, documents: list[dict[str, Any]], queries: list[Expr]
) -> None:
    with database.unit_of_work() as session:
        tenant = find_tenant(session, "", create=True)
        session.execute(delete(EntityType))
        session.execute(delete(Entity))
        now = utcnow()
        rows = [
            {
                "tenant_id": tenant.id,
                "entity_id": f"urn:ngsi-ld:T:{number}",
                "types": ["urn:test:T"],
                "attrs": attrs,
                "created_at": now,
                "modified_at": now,
            }
            for number, attrs in enumerate(documents)
        ]
        session.execute(insert(Entity), rows)
    dialect = database.dialect
    with database.session() as session:
        for query in queries:
            accepted = {
                row["entity_id"]
                for row in rows
                if evaluate(query, normalized(row["entity_id"], row["attrs"]), attribute_resolver=resolve)
            }
            clause = to_sql(condition_of(query, resolve), Entity.attrs, dialect)
            statement = select(Entity.entity_id)
            kept = set(session.scalars(statement.where(clause) if clause is not None else statement))
            assert accepted <= kept, (query, accepted - kept)
            answer = query_entities(
                session, tenant, EntityQuery(q=query, limit=1000, attribute_resolver=resolve)
            )
            assert {entity.entity_id for entity in answer.entities} == accepted
