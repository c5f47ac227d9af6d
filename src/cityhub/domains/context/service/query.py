"""Entity queries (clauses 5.7.2, 5.7.3): selectors, ``q``, geo-query, scope, projection, paging.

SQL narrows the candidates (tenant, type, id, idPattern where the database can, the geo bounding box or H3
cells); the exact NGSI-LD semantics are then decided in Python by ``query.qlang``/``query.geoquery``, which
stay the reference for every filter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import BigInteger, Select, String, and_, any_, bindparam, func, or_, select, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from cityhub.domains.context.errors import BadRequestData
from cityhub.domains.context.models import Entity, EntityType
from cityhub.domains.context.query.geoquery import GeoQuery, GeoRel, geometry_bounds, matches_entity
from cityhub.domains.context.query.prefilter import AttributeHas, Condition, Either, condition_of, to_sql
from cityhub.domains.context.query.qlang import Expr, evaluate
from cityhub.domains.context.query.regex_guard import unsafe_reason
from cityhub.domains.context.service.changes import EntitySnapshot
from cityhub.domains.context.service.entities import NEAR_CELL_RESOLUTION, snapshot
from cityhub.domains.context.service.tenants import TenantRef
from cityhub.domains.context.store.document import LOCATION
from cityhub.kernel.db import is_postgres
from cityhub.kernel.geo import cells_within

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
SCAN_BATCH = 500
COUNT_BATCH = 2_000
FIRST_BATCH_MIN = 8
_DEGREE_M = 111_320.0
MAX_CELL_FILTER_M = 3_000.0  # beyond this an H3 cover has too many cells; a box filter is cheaper


@dataclass(frozen=True)
class EntitySelector:
    """One ``entities`` item: an id, an idPattern and/or a type (IRIs), all optional but one."""

    id: str | None = None
    id_pattern: str | None = None
    types: tuple[str, ...] = ()


@dataclass
class EntityQuery:
    selectors: list[EntitySelector] = field(default_factory=list)
    attrs: frozenset[str] | None = None  # entities need one of these (and only these are shown)
    q: Expr | None = None
    geo: GeoQuery | None = None
    geo_property: str = LOCATION
    scopes: list[str] | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    count: bool = False
    attribute_resolver: Any = None  # maps q/geo names to stored IRIs


@dataclass
class QueryResult:
    entities: list[EntitySnapshot]
    count: int | None


def compile_pattern(pattern: str) -> re.Pattern[str]:
    refused = unsafe_reason(pattern)
    if refused is not None:
        raise BadRequestData(f"invalid idPattern: {refused}")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise BadRequestData(f"invalid idPattern {pattern!r}: {exc}") from None


def check_paging(limit: int, offset: int, *, count: bool) -> None:
    if limit < 0 or (limit == 0 and not count) or limit > MAX_LIMIT:
        raise BadRequestData(f"limit must be between 1 and {MAX_LIMIT} (0 only with count=true)")
    if offset < 0:
        raise BadRequestData("offset must not be negative")


def query_entities(session: Session, tenant: TenantRef, query: EntityQuery) -> QueryResult:
    check_paging(query.limit, query.offset, count=query.count)
    matched: list[EntitySnapshot] = []
    total = 0
    for row in _matching(session, tenant, query):
        if query.offset <= total < query.offset + query.limit:
            matched.append(snapshot(row))
        total += 1
        if not query.count and total >= query.offset + query.limit:
            break
    return QueryResult(matched, total if query.count else None)


def each_entity(session: Session, tenant: TenantRef, query: EntityQuery) -> Iterator[EntitySnapshot]:
    """Every entity the query matches, in key order, without paging (``limit`` and ``offset`` are ignored):
    for readers that take them all, such as a table of one entity type. Read in large batches."""
    for row in _matching(session, tenant, replace(query, count=True)):
        yield snapshot(row)


def _matching(session: Session, tenant: TenantRef, query: EntityQuery) -> Iterator[Entity]:
    matcher = _Matcher(query)
    return (row for row in _candidates(session, tenant, query) if matcher.matches(row))


class _Matcher:
    def __init__(self, query: EntityQuery) -> None:
        self.query = query
        self.patterns = [
            (compile_pattern(selector.id_pattern) if selector.id_pattern else None, selector)
            for selector in query.selectors
        ]

    def matches(self, row: Entity) -> bool:
        query = self.query
        if self.patterns and not any(self._selected(row, pattern, sel) for pattern, sel in self.patterns):
            return False
        if query.attrs is not None and not query.attrs & row.attrs.keys():
            return False
        if query.scopes is not None and not _in_scopes(row.scopes, query.scopes):
            return False
        document: dict[str, Any] | None = None
        if query.q is not None:
            document = {"id": row.entity_id, "type": row.types, **row.attrs}
            if not evaluate(query.q, _normalized(document), attribute_resolver=query.attribute_resolver):
                return False
        if query.geo is not None:
            document = document or {"id": row.entity_id, **row.attrs}
            if not matches_entity(query.geo, _normalized(document), query.attribute_resolver):
                return False
        return True

    @staticmethod
    def _selected(row: Entity, pattern: re.Pattern[str] | None, selector: EntitySelector) -> bool:
        if selector.id is not None and row.entity_id != selector.id:
            return False
        if pattern is not None and not pattern.search(row.entity_id):
            return False
        return not selector.types or bool(set(selector.types) & set(row.types))


def _normalized(document: dict[str, Any]) -> dict[str, Any]:
    """The stored instance lists as the evaluator expects: a single instance unwrapped."""
    return {
        key: value[0] if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict) else value
        for key, value in document.items()
    }


def _in_scopes(entity_scopes: Sequence[str] | None, wanted: Sequence[str]) -> bool:
    """scopeQ: ``/a/#`` matches /a and below, ``/a/+`` one level below, ``/#`` any scope."""
    for scope in entity_scopes or ():
        for pattern in wanted:
            if _scope_matches(scope, pattern):
                return True
    return False


def _scope_matches(scope: str, pattern: str) -> bool:
    if pattern == "/#":
        return True
    if pattern.endswith("/#"):
        base = pattern[:-2]
        return scope == base or scope.startswith(base + "/")
    if pattern.endswith("/+"):
        base = pattern[:-2]
        rest = scope[len(base) + 1 :] if scope.startswith(base + "/") else ""
        return bool(rest) and "/" not in rest
    return scope == pattern


def _candidates(session: Session, tenant: TenantRef, query: EntityQuery) -> Iterator[Entity]:
    """Rows passing the SQL pre-filters in primary-key order, fetched in growing batches.

    A single entity type drives the scan from the type index (already in primary-key order, so a page stops
    early); a ``near`` query first reads the keys in its H3 cells (index only) and then fetches rows by
    chunks of those keys. The tenant test is written so that SQLite's planner does not pick a
    (tenant_id, ...) index and sort every row of the tenant. The first batch is just large enough for the
    page when nothing is refused in Python; later ones double, up to a large fixed batch when every match
    must be counted anyway.
    """
    key: Any = Entity.pk
    statement = select(Entity).where(Entity.tenant_id + 0 == tenant.id)
    single_type = _single_type(query.selectors)
    if single_type is not None:
        key = EntityType.entity_pk
        statement = statement.join(EntityType, EntityType.entity_pk == Entity.pk).where(
            EntityType.tenant_id == tenant.id, EntityType.type_iri == single_type
        )
    else:
        statement = _by_selectors(statement, tenant, query.selectors)
    statement = _by_attributes(_by_geo(statement, query), session, query)
    batch = COUNT_BATCH if query.count else max(query.offset + query.limit, FIRST_BATCH_MIN)
    near = _near_keys(session, tenant, query)
    if near is not None:
        yield from _by_key_chunks(session, statement.order_by(key), near, batch * 2)
    else:
        yield from _by_key_ranges(session, statement.order_by(key), key, batch)


def _by_key_ranges(session: Session, statement: Select[Any], key: Any, batch: int) -> Iterator[Entity]:
    last_pk = 0
    while True:
        rows = list(session.scalars(statement.where(key > last_pk).limit(batch)))
        yield from rows
        if len(rows) < batch:
            return
        last_pk = rows[-1].pk
        batch = min(batch * 2, max(SCAN_BATCH, batch))


def _by_key_chunks(session: Session, statement: Select[Any], keys: list[int], batch: int) -> Iterator[Entity]:
    start = 0
    while start < len(keys):
        chunk = keys[start : start + batch]
        yield from session.scalars(statement.where(_one_of(session, Entity.pk, chunk, BigInteger)))
        start += batch
        batch = min(batch * 2, max(SCAN_BATCH, batch))


def _single_type(selectors: list[EntitySelector]) -> str | None:
    if len(selectors) == 1 and selectors[0].id is None and len(selectors[0].types) == 1:
        return selectors[0].types[0]
    return None


def _by_attributes(statement: Select[Any], session: Session, query: EntityQuery) -> Select[Any]:
    """The ``q`` pre-filter (``query.prefilter``) and the ``attrs`` selection (one of them must exist)."""
    resolve = query.attribute_resolver or (lambda name: name)
    conditions: list[Condition] = []
    if query.q is not None:
        conditions.append(condition_of(query.q, resolve))
    if query.attrs is not None:
        conditions.append(Either(tuple(AttributeHas(iri) for iri in sorted(query.attrs))))
    for condition in conditions:
        clause = to_sql(condition, Entity.attrs, session.get_bind().dialect.name)
        if clause is not None:
            statement = statement.where(clause)
    return statement


def _by_selectors(statement: Select[Any], tenant: TenantRef, selectors: list[EntitySelector]) -> Select[Any]:
    if not selectors:
        return statement
    if any(not selector.types and selector.id is None for selector in selectors):
        return statement  # a pattern-only selector: every entity is a candidate
    conditions = []
    for selector in selectors:
        if selector.id is not None:  # the tenant again, so that the (tenant_id, entity_id) index serves it
            conditions.append(and_(Entity.tenant_id == tenant.id, Entity.entity_id == selector.id))
        else:
            typed = select(EntityType.entity_pk).where(
                EntityType.tenant_id == tenant.id, EntityType.type_iri.in_(selector.types)
            )
            conditions.append(Entity.pk.in_(typed))
    return statement.where(or_(*conditions))


def _near_keys(session: Session, tenant: TenantRef, query: EntityQuery) -> list[int] | None:
    """The sorted keys of the entities whose H3 cell (points) or bounding box (other shapes) may be near;
    None when the query has no ``near`` small enough for a cell cover."""
    geo = query.geo
    if geo is None or query.geo_property != LOCATION or geo.georel is not GeoRel.NEAR:
        return None
    if geo.max_distance is None or geo.max_distance > MAX_CELL_FILTER_M:
        return None
    lon, lat = geo.coordinates
    cells = cells_within(lon, lat, geo.max_distance, NEAR_CELL_RESOLUTION)
    in_cells = select(Entity.pk).where(
        Entity.tenant_id == tenant.id, _one_of(session, Entity.geo_cell, cells, String)
    )
    other_shapes = select(Entity.pk).where(
        Entity.tenant_id == tenant.id, _non_point_near(lon, lat, geo.max_distance)
    )
    keys = in_cells.union_all(other_shapes)
    if is_postgres(session):  # one array, not a row per key: the fetch cost more than the index scan
        found = keys.subquery()
        return sorted(set(session.scalar(select(func.array_agg(found.c.pk))) or ()))
    return sorted(set(session.scalars(keys)))


def _one_of(session: Session, column: Any, values: list[Any], item_type: type[TypeEngine[Any]]) -> Any:
    """``column IN values``; on PostgreSQL ``= ANY(array)``, one parameter whatever the count, so the
    statement text repeats and psycopg prepares it once instead of the server planning every call."""
    if is_postgres(session):
        return column == any_(bindparam(None, values, type_=ARRAY(item_type)))
    return column.in_(values)


def _by_geo(statement: Select[Any], query: EntityQuery) -> Select[Any]:
    """Bounding-box pre-filters (``near`` with a small distance is ``_near_keys``' job)."""
    geo = query.geo
    if geo is None or query.geo_property != LOCATION:
        return statement
    if geo.georel is GeoRel.NEAR and geo.max_distance is not None:
        if geo.max_distance <= MAX_CELL_FILTER_M:
            return statement
        lon, lat = geo.coordinates
        return statement.where(_box_near(lon, lat, geo.max_distance))
    if geo.georel in (GeoRel.WITHIN, GeoRel.INTERSECTS, GeoRel.EQUALS, GeoRel.OVERLAPS, GeoRel.CONTAINS):
        min_lon, min_lat, max_lon, max_lat = _reference_bounds(geo)
        return statement.where(
            Entity.geo_min_lon <= max_lon,
            Entity.geo_max_lon >= min_lon,
            Entity.geo_min_lat <= max_lat,
            Entity.geo_max_lat >= min_lat,
        )
    return statement


def _non_point_near(lon: float, lat: float, distance_m: float) -> Any:
    """Shapes other than points have no cell: keep those whose bounding box comes near enough.

    The NULL cells of the cell index are the selective part; ``+ 0`` keeps SQLite from scanning a whole
    latitude band of the latitude index instead.
    """
    return Entity.geo_cell.is_(None) & _box_near(lon, lat, distance_m, Entity.geo_min_lat + 0)


def _box_near(lon: float, lat: float, distance_m: float, min_lat: Any = Entity.geo_min_lat) -> Any:
    """Bounding boxes within ``distance_m`` of the point, by a latitude/longitude margin (never too small)."""
    lat_margin = distance_m / _DEGREE_M * 1.01
    lon_margin = lat_margin / max(math.cos(math.radians(min(abs(lat) + lat_margin, 89.0))), 0.01)
    return (
        (min_lat <= lat + lat_margin)  # NULL (no location) compares as unknown: excluded
        & (Entity.geo_max_lat >= lat - lat_margin)
        & (Entity.geo_min_lon <= lon + lon_margin)
        & (Entity.geo_max_lon >= lon - lon_margin)
    )


def _reference_bounds(geo: GeoQuery) -> tuple[float, float, float, float]:
    bounds = geometry_bounds(geo.reference)
    if bounds is None:
        raise BadRequestData("invalid geo-query coordinates")
    return bounds


def count_all(session: Session, tenant: TenantRef) -> int:
    return int(
        session.scalar(select(func.count()).select_from(Entity).where(Entity.tenant_id == tenant.id)) or 0
    )


# -- discovery (clause 5.7.5-5.7.10): types and attributes, aggregated in SQL -----------------------------


def type_counts(session: Session, tenant: TenantRef, type_iri: str | None = None) -> dict[str, int]:
    """Entity type IRI -> number of entities of the type."""
    statement = (
        select(EntityType.type_iri, func.count())
        .where(EntityType.tenant_id == tenant.id)
        .group_by(EntityType.type_iri)
        .order_by(EntityType.type_iri)
    )
    if type_iri is not None:
        statement = statement.where(EntityType.type_iri == type_iri)
    return {iri: int(count) for iri, count in session.execute(statement)}


@dataclass(frozen=True)
class AttributeFacts:
    """What the store holds of one attribute: its instance count, attribute types, entity types."""

    instances: int
    kinds: frozenset[str]
    entity_types: frozenset[str]


def attribute_facts(
    session: Session, tenant: TenantRef, *, type_iri: str | None = None, attr_iri: str | None = None
) -> dict[str, AttributeFacts]:
    """Attribute IRI -> facts, over the tenant's entities (of one type, or of one attribute name)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    each = (func.jsonb_each if postgres else func.json_each)(Entity.attrs).table_valued("key", "value")
    elements = (func.jsonb_array_elements if postgres else func.json_each)(each.c.value).table_valued("value")
    kind = elements.c.value.op("->>")("type") if postgres else func.json_extract(elements.c.value, "$.type")
    counted = (
        select(each.c.key, kind, func.count())
        .select_from(Entity)
        .join(each, true())
        .join(elements, true())
        .where(Entity.tenant_id == tenant.id)
        .group_by(each.c.key, kind)
    )
    if type_iri is not None:
        counted = counted.join(EntityType, EntityType.entity_pk == Entity.pk).where(
            EntityType.type_iri == type_iri
        )
    if attr_iri is not None:
        counted = counted.where(each.c.key == attr_iri)
    kinds_by_attribute: dict[str, dict[str, int]] = {}
    for name, attribute_kind, count in session.execute(counted):
        kinds_by_attribute.setdefault(name, {})[attribute_kind or "Property"] = int(count)
    typed = (
        select(each.c.key, EntityType.type_iri)
        .select_from(Entity)
        .join(EntityType, EntityType.entity_pk == Entity.pk)
        .join(each, true())
        .where(Entity.tenant_id == tenant.id)
        .distinct()
    )
    if type_iri is not None:
        typed = typed.where(EntityType.type_iri == type_iri)
    if attr_iri is not None:
        typed = typed.where(each.c.key == attr_iri)
    types_by_attribute: dict[str, set[str]] = {}
    for name, entity_type in session.execute(typed):
        types_by_attribute.setdefault(name, set()).add(entity_type)
    return {
        name: AttributeFacts(
            sum(kinds.values()), frozenset(kinds), frozenset(types_by_attribute.get(name, ()))
        )
        for name, kinds in sorted(kinds_by_attribute.items())
    }
