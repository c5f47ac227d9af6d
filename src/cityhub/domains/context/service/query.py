"""Entity queries (clauses 5.7.2, 5.7.3): selectors, ``q``, geo-query, scope, projection, paging.

SQL narrows the candidates (tenant, type, id, idPattern where the database can, the geo bounding box or H3
cells); the exact NGSI-LD semantics are then decided in Python by ``query.qlang``/``query.geoquery``, which
stay the reference for every filter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from cityhub.domains.context.errors import BadRequestData
from cityhub.domains.context.models import Entity, EntityType
from cityhub.domains.context.query.geoquery import GeoQuery, GeoRel, geometry_bounds, matches_entity
from cityhub.domains.context.query.qlang import Expr, evaluate
from cityhub.domains.context.service.changes import EntitySnapshot
from cityhub.domains.context.service.entities import NEAR_CELL_RESOLUTION, snapshot
from cityhub.domains.context.service.tenants import TenantRef
from cityhub.domains.context.store.document import LOCATION
from cityhub.kernel.geo import cells_within

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
SCAN_BATCH = 500
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
    matcher = _Matcher(query)
    matched: list[EntitySnapshot] = []
    total = 0
    for row in _candidates(session, tenant, query):
        if not matcher.matches(row):
            continue
        if query.offset <= total < query.offset + query.limit:
            matched.append(snapshot(row))
        total += 1
        if not query.count and total >= query.offset + query.limit:
            break
    return QueryResult(matched, total if query.count else None)


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
    statement = select(Entity).where(Entity.tenant_id == tenant.id)
    statement = _by_selectors(statement, tenant, query.selectors)
    statement = _by_geo(statement, query)
    statement = statement.order_by(Entity.pk)
    last_pk = 0
    while True:
        rows = list(session.scalars(statement.where(Entity.pk > last_pk).limit(SCAN_BATCH)))
        yield from rows
        if len(rows) < SCAN_BATCH:
            return
        last_pk = rows[-1].pk


def _by_selectors(statement: Select[Any], tenant: TenantRef, selectors: list[EntitySelector]) -> Select[Any]:
    if not selectors:
        return statement
    if any(not selector.types and selector.id is None for selector in selectors):
        return statement  # a pattern-only selector: every entity is a candidate
    conditions = []
    for selector in selectors:
        if selector.id is not None:
            conditions.append(Entity.entity_id == selector.id)
        else:
            typed = select(EntityType.entity_pk).where(
                EntityType.tenant_id == tenant.id, EntityType.type_iri.in_(selector.types)
            )
            conditions.append(Entity.pk.in_(typed))
    return statement.where(or_(*conditions))


def _by_geo(statement: Select[Any], query: EntityQuery) -> Select[Any]:
    geo = query.geo
    if geo is None or query.geo_property != LOCATION:
        return statement
    if geo.georel is GeoRel.NEAR and geo.max_distance is not None:
        lon, lat = geo.coordinates
        if geo.max_distance <= MAX_CELL_FILTER_M:
            cells = cells_within(lon, lat, geo.max_distance, NEAR_CELL_RESOLUTION)
            return statement.where(
                or_(Entity.geo_cell.in_(cells), _non_point_near(lon, lat, geo.max_distance))
            )
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
    """Shapes other than points have no cell: keep those whose bounding box comes near enough."""
    return Entity.geo_cell.is_(None) & _box_near(lon, lat, distance_m)


def _box_near(lon: float, lat: float, distance_m: float) -> Any:
    """Bounding boxes within ``distance_m`` of the point, by a latitude/longitude margin (never too small)."""
    lat_margin = distance_m / _DEGREE_M * 1.01
    lon_margin = lat_margin / max(math.cos(math.radians(min(abs(lat) + lat_margin, 89.0))), 0.01)
    return (
        Entity.geo_min_lat.is_not(None)
        & (Entity.geo_min_lat <= lat + lat_margin)
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
