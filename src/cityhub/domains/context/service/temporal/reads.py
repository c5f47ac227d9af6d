"""Retrieve one entity's temporal representation (clause 5.7.3) and query many (clause 5.7.4).

Which entities: ``id`` lists are looked up in the history itself (so the history of a deleted entity is
found); ``type``, ``idPattern`` without ids, ``q`` and geo-queries select among the entities that exist now,
and ``q`` and the geo-query are evaluated against their current state (the usual reading of "entities
whose brandName is Mercedes"). An entity is returned when it has an instance in the window (of one of
``attrs`` when given); ``limit`` and ``offset`` page through entities, ``count=true`` counts them. Instances
are capped per attribute (``MAX_INSTANCES``); a capped answer is *partial* and says where to continue
(``TemporalResult.partial``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from cityhub.domains.context.errors import ResourceNotFound
from cityhub.domains.context.query.geoquery import GeoQuery
from cityhub.domains.context.query.qlang import Expr
from cityhub.domains.context.service.query import (
    MAX_LIMIT,
    EntityQuery,
    EntitySelector,
    check_paging,
    compile_pattern,
    query_entities,
)
from cityhub.domains.context.service.temporal.aggregation import aggregate_attribute
from cityhub.domains.context.service.temporal.history import (
    AttributeHistory,
    attribute_names,
    entity_types,
    has_history,
    read_attribute,
)
from cityhub.domains.context.service.temporal.representation import (
    aggregated_attribute,
    normalized_attribute,
    simplified_attribute,
)
from cityhub.domains.context.service.temporal.window import Aggregation, TemporalQuery
from cityhub.domains.context.service.tenants import TenantRef
from cityhub.domains.context.store.document import LOCATION


class View(StrEnum):
    NORMALIZED = "normalized"
    TEMPORAL_VALUES = "temporalValues"
    AGGREGATED = "aggregatedValues"


@dataclass(frozen=True)
class TemporalView:
    """What to show of each entity's history."""

    query: TemporalQuery = field(default_factory=TemporalQuery)
    attrs: frozenset[str] | None = None
    view: View = View.NORMALIZED
    aggregation: Aggregation | None = None
    sys_attrs: bool = False


@dataclass(frozen=True)
class TemporalSelection:
    """Which entities a temporal query is about (names already expanded): any of the selectors, then
    ``q`` and ``geo`` on the current entities."""

    selectors: tuple[EntitySelector, ...] = ()
    q: Expr | None = None
    geo: GeoQuery | None = None
    geo_property: str = LOCATION
    attribute_resolver: Any = None

    @property
    def by_id_only(self) -> bool:
        """Every selector names an id and nothing filters on the current state: the history is enough."""
        return bool(self.selectors) and all(s.id for s in self.selectors) and self.q is None and not self.geo


@dataclass
class TemporalResult:
    """Entities in expanded names; ``partial``: where the capped instances stop (None: complete)."""

    entities: list[dict[str, Any]]
    partial: tuple[datetime | None, datetime] | None = None
    count: int | None = None


def retrieve_temporal(
    session: Session, tenant: TenantRef, entity_id: str, view: TemporalView
) -> TemporalResult:
    types = entity_types(session, tenant.id, entity_id)
    if types is None and not has_history(session, tenant.id, entity_id, None, TemporalQuery()):
        raise ResourceNotFound(f"entity {entity_id} has no temporal history")
    page = _Page(view)
    page.add(session, tenant, entity_id, types or [])
    return page.result(None)


def query_temporal(
    session: Session,
    tenant: TenantRef,
    selection: TemporalSelection,
    view: TemporalView,
    *,
    limit: int,
    offset: int,
    count: bool,
) -> TemporalResult:
    check_paging(limit, offset, count=count)
    attrs = sorted(view.attrs) if view.attrs is not None else None
    page = _Page(view)
    total = 0
    for entity_id, types in _candidates(session, tenant, selection):
        if not has_history(session, tenant.id, entity_id, attrs, view.query):
            continue
        if offset <= total < offset + limit:
            page.add(session, tenant, entity_id, types)
        total += 1
        if not count and total >= offset + limit:
            break
    return page.result(total if count else None)


class _Page:
    """The entities of one answer and the earliest point where an attribute's instances were capped."""

    def __init__(self, view: TemporalView) -> None:
        self.view = view
        self.entities: list[dict[str, Any]] = []
        self.partial: tuple[datetime | None, datetime] | None = None

    def add(self, session: Session, tenant: TenantRef, entity_id: str, types: list[str]) -> None:
        view = self.view
        document: dict[str, Any] = {"id": entity_id, "type": types[0] if len(types) == 1 else types}
        names = (
            sorted(view.attrs) if view.attrs is not None else attribute_names(session, tenant.id, entity_id)
        )
        for name in names:
            shown = self._attribute(session, tenant, entity_id, name)
            if shown:
                document[name] = shown
        self.entities.append(document)

    def _attribute(self, session: Session, tenant: TenantRef, entity_id: str, name: str) -> Any:
        view = self.view
        if view.view is View.AGGREGATED:
            assert view.aggregation is not None
            series = aggregate_attribute(session, tenant.id, entity_id, name, view.query, view.aggregation)
            return aggregated_attribute(series, view.aggregation.methods) if series else None
        values_only = view.view is View.TEMPORAL_VALUES
        history = read_attribute(session, tenant.id, entity_id, name, view.query, values_only=values_only)
        self._note_partial(history)
        if not history.rows:
            return None
        if values_only:
            return simplified_attribute(history.rows)
        return normalized_attribute(history.rows, sys_attrs=view.sys_attrs)

    def _note_partial(self, history: AttributeHistory) -> None:
        stop = history.continue_from
        if stop is None:
            return
        if self.partial is None or _earlier_stop(stop, self.partial[1], newest_first=history.newest_first):
            self.partial = (history.first_read, stop)

    def result(self, count: int | None) -> TemporalResult:
        return TemporalResult(self.entities, self.partial, count)


def _earlier_stop(candidate: datetime, current: datetime, *, newest_first: bool) -> bool:
    """The stop that loses nothing when the next page starts there (the least advanced one)."""
    return candidate > current if newest_first else candidate < current


def _candidates(
    session: Session, tenant: TenantRef, selection: TemporalSelection
) -> Iterator[tuple[str, list[str]]]:
    if selection.by_id_only:
        yield from _listed(session, tenant, selection.selectors)
        return
    entity_query = EntityQuery(
        selectors=list(selection.selectors),
        q=selection.q,
        geo=selection.geo,
        geo_property=selection.geo_property,
        limit=MAX_LIMIT,
        attribute_resolver=selection.attribute_resolver,
    )
    while True:
        found = query_entities(session, tenant, entity_query).entities
        for entity in found:
            yield entity.entity_id, entity.types
        if len(found) < MAX_LIMIT:
            return
        entity_query.offset += MAX_LIMIT


def _listed(
    session: Session, tenant: TenantRef, selectors: tuple[EntitySelector, ...]
) -> Iterator[tuple[str, list[str]]]:
    """Entities given by id, current or only in the history, in the order given."""
    seen: set[str] = set()
    for selector in selectors:
        assert selector.id is not None
        if selector.id in seen:
            continue
        if selector.id_pattern is not None and not compile_pattern(selector.id_pattern).search(selector.id):
            continue
        types = entity_types(session, tenant.id, selector.id)
        if types is None or (selector.types and not set(selector.types) & set(types)):
            continue
        seen.add(selector.id)
        yield selector.id, types
