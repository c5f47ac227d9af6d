"""Read queries of the operator pages (``/console/context``): the tenants a user may read, entity types with
counts, entity lists, map features, one entity's attributes and history, subscriptions with delivery status.

Names are stored as IRIs; the pages show them compacted with the core @context, and an IRI the core context
does not cover by its last segment (Smart Data Models IRIs end in the model's attribute name), with the full
IRI alongside.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session

from cityhub.domains.context.errors import NgsiError
from cityhub.domains.context.jsonld import ContextResolver, TermMapper
from cityhub.domains.context.models import AttributeInstance, Entity, EntityType, Subscription
from cityhub.domains.context.service.tenants import (
    TenantRef,
    authorize,
    check_tenant_name,
    find_tenant,
    tenants_allowed,
)
from cityhub.domains.context.settings import ContextSettings
from cityhub.domains.context.store.document import (
    LOCATION,
    PROPERTY,
    VALUE_MEMBER,
    Instance,
    find_instance,
    instance_value_number,
    parse_datetime,
)
from cityhub.domains.context.subscriptions.document import masked_uri
from cityhub.domains.identity import Principal
from cityhub.kernel.errors import NotFound, Problem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.pagination import PageParams, fetch_page
from cityhub.kernel.settings import domain_settings

READ = "context.entities.read"
MAP_FEATURE_LIMIT = 500  # markers one map request returns; the map asks again when the view moves
SERIES_POINT_LIMIT = 5_000  # the newest points of one attribute a chart receives
NAME_SUFFIX = "/name"  # the IRI tail of the entity-name attribute (core ngsi-ld:name, Smart Data Models name)


# -- names ------------------------------------------------------------------------------------------------


@cache
def core_mapper() -> TermMapper:
    """The core @context's term mapper (names as a client without a @context gives them)."""
    return ContextResolver(domain_settings(ContextSettings)).mapper(None)


def display_name(iri: str) -> str:
    """A readable name for an attribute or type IRI."""
    compacted = core_mapper().compact_iri(iri)
    if compacted != iri:
        return compacted
    tail = iri.rstrip("/#").replace("#", "/").rsplit("/", 1)[-1]
    return tail or iri


# -- tenants ----------------------------------------------------------------------------------------------


def readable_tenants(session: Session, user: Principal) -> list[TenantRef]:
    """Every tenant the user may read entities of, the default tenant first."""
    return tenants_allowed(session, user, READ)


def open_tenant(session: Session, user: Principal, name: str, permission: str = READ) -> TenantRef:
    """The tenant a page asks for, if it exists and the user holds ``permission`` in it."""
    try:
        tenant = find_tenant(session, check_tenant_name(name), create=False)
    except NgsiError:
        raise NotFound(_("There is no tenant %(name)s.", name=name)) from None
    authorize(user, permission, tenant)
    return tenant


# -- types and entities -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TypeCount:
    iri: str
    name: str
    count: int


def type_counts(session: Session, tenant: TenantRef) -> list[TypeCount]:
    rows = session.execute(
        select(EntityType.type_iri, func.count())
        .where(EntityType.tenant_id == tenant.id)
        .group_by(EntityType.type_iri)
    ).all()
    counts = [TypeCount(iri, display_name(iri), int(count)) for iri, count in rows]
    return sorted(counts, key=lambda item: (item.name.lower(), item.iri))


def _of_type(statement: Select[Any], tenant: TenantRef, type_iri: str | None) -> Select[Any]:
    statement = statement.where(Entity.tenant_id == tenant.id)
    if type_iri:
        typed = select(EntityType.entity_pk).where(
            EntityType.tenant_id == tenant.id, EntityType.type_iri == type_iri
        )
        statement = statement.where(Entity.pk.in_(typed))
    return statement


@dataclass(frozen=True)
class EntityRow:
    entity_id: str
    types: list[str]
    name: str | None
    modified_at: datetime
    located: bool


def entity_page(
    session: Session, tenant: TenantRef, type_iri: str | None, paging: PageParams
) -> tuple[list[EntityRow], int]:
    statement = _of_type(select(Entity), tenant, type_iri).order_by(Entity.entity_id)
    rows, total = fetch_page(session, statement, paging)
    return [
        EntityRow(
            row.entity_id,
            [display_name(iri) for iri in row.types],
            entity_name(row.attrs),
            row.modified_at,
            row.geo_min_lon is not None,
        )
        for row in rows
    ], total


def entity_name(attrs: Mapping[str, list[Instance]]) -> str | None:
    """The value of the entity's ``name`` Property (core or Smart Data Models), if it has one."""
    for iri, instances in attrs.items():
        if iri.endswith(NAME_SUFFIX) and instances:
            value = instances[0].get("value")
            if isinstance(value, str):
                return value
    return None


# -- the map ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoundingBox:
    west: float
    south: float
    east: float
    north: float

    @classmethod
    def parse(cls, text: str) -> BoundingBox:
        """``west,south,east,north`` in degrees (Leaflet's ``getBounds().toBBoxString()``)."""
        try:
            west, south, east, north = (float(part) for part in text.split(","))
        except ValueError:
            raise Problem(_("The map area is not of the form west,south,east,north.")) from None
        if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
            raise Problem(_("The map area is not of the form west,south,east,north."))
        return cls(west, south, east, north)


def map_features(
    session: Session,
    tenant: TenantRef,
    type_iri: str | None,
    box: BoundingBox | None,
) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of the located entities (touching ``box``), at most ``MAP_FEATURE_LIMIT``;
    ``truncated`` tells the map that more exist there."""
    limit = MAP_FEATURE_LIMIT
    statement = _of_type(select(Entity), tenant, type_iri).where(Entity.geo_min_lon.is_not(None))
    if box is not None:
        statement = statement.where(
            and_(
                Entity.geo_min_lon <= box.east,
                Entity.geo_max_lon >= box.west,
                Entity.geo_min_lat <= box.north,
                Entity.geo_max_lat >= box.south,
            )
        )
    rows = list(session.scalars(statement.order_by(Entity.entity_id).limit(limit + 1)))
    features = [feature for row in rows[:limit] if (feature := _feature(row)) is not None]
    return {"type": "FeatureCollection", "features": features, "truncated": len(rows) > limit}


def _feature(row: Entity) -> dict[str, Any] | None:
    instances = row.attrs.get(LOCATION) or []
    index = find_instance(instances, None)
    if index is None:
        return None
    return {
        "type": "Feature",
        "geometry": instances[index].get("value"),
        "properties": {
            "id": row.entity_id,
            "type": ", ".join(display_name(iri) for iri in row.types),
            "name": entity_name(row.attrs) or row.entity_id,
        },
    }


# -- one entity -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttributeView:
    iri: str
    name: str
    kind: str
    value: str
    unit: str | None
    observed_at: datetime | None
    modified_at: datetime | None
    dataset_id: str | None
    numeric: bool


@dataclass(frozen=True)
class EntityView:
    entity_id: str
    types: list[str]
    name: str | None
    created_at: datetime
    modified_at: datetime
    attributes: list[AttributeView]

    @property
    def numeric_attributes(self) -> list[AttributeView]:
        return [attribute for attribute in self.attributes if attribute.numeric]


def entity_view(session: Session, tenant: TenantRef, entity_id: str) -> EntityView:
    row = session.scalars(
        select(Entity).where(Entity.tenant_id == tenant.id, Entity.entity_id == entity_id)
    ).first()
    if row is None:
        raise NotFound(_("There is no entity %(id)s here.", id=entity_id))
    attributes = [
        _attribute_view(iri, instance) for iri, instances in row.attrs.items() for instance in instances
    ]
    return EntityView(
        row.entity_id,
        [display_name(iri) for iri in row.types],
        entity_name(row.attrs),
        row.created_at,
        row.modified_at,
        sorted(attributes, key=lambda item: (item.name.lower(), item.dataset_id or "")),
    )


def _attribute_view(iri: str, instance: Instance) -> AttributeView:
    kind = str(instance.get("type", PROPERTY))
    value = instance.get(VALUE_MEMBER.get(kind, "value"))
    return AttributeView(
        iri=iri,
        name=display_name(iri),
        kind=kind,
        value=value if isinstance(value, str) else json.dumps(value, ensure_ascii=False),
        unit=instance.get("unitCode"),
        observed_at=_moment(instance.get("observedAt")),
        modified_at=_moment(instance.get("modifiedAt")),
        dataset_id=instance.get("datasetId"),
        numeric=instance_value_number(instance) is not None,
    )


def _moment(value: Any) -> datetime | None:
    return parse_datetime(value, "a timestamp") if isinstance(value, str) else None


@dataclass(frozen=True)
class Series:
    iri: str
    name: str
    unit: str | None
    points: list[tuple[str, float]]  # (ISO 8601 time, value), oldest first


def history_series(session: Session, tenant: TenantRef, entity: EntityView, since: datetime) -> list[Series]:
    """The recorded values of the entity's numeric attributes (default instances) since ``since``."""
    series: list[Series] = []
    for attribute in entity.numeric_attributes:
        if attribute.dataset_id is not None:
            continue
        rows = session.execute(
            select(AttributeInstance.observed_at, AttributeInstance.value_num)
            .where(
                AttributeInstance.tenant_id == tenant.id,
                AttributeInstance.entity_id == entity.entity_id,
                AttributeInstance.attr_iri == attribute.iri,
                AttributeInstance.observed_at >= since,
                AttributeInstance.dataset_id.is_(None),
                AttributeInstance.value_num.is_not(None),
            )
            .order_by(AttributeInstance.observed_at.desc())
            .limit(SERIES_POINT_LIMIT)
        ).all()
        points = [(moment.isoformat(), value) for moment, value in reversed(rows) if value is not None]
        series.append(Series(attribute.iri, attribute.name, attribute.unit, points))
    return series


# -- subscriptions ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubscriptionView:
    subscription_id: str
    name: str | None
    endpoint: str | None
    is_active: bool
    expires_at: datetime | None
    times_sent: int
    times_failed: int
    last_notification: datetime | None
    last_success: datetime | None
    last_failure: datetime | None
    last_failure_reason: str | None


def subscription_page(
    session: Session, tenant: TenantRef, paging: PageParams
) -> tuple[list[SubscriptionView], int]:
    statement = (
        select(Subscription).where(Subscription.tenant_id == tenant.id).order_by(Subscription.subscription_id)
    )
    rows, total = fetch_page(session, statement, paging)
    return [_subscription_view(row) for row in rows], total


def _subscription_view(row: Subscription) -> SubscriptionView:
    document = row.document if isinstance(row.document, dict) else {}
    notification = document.get("notification")
    endpoint = notification.get("endpoint") if isinstance(notification, dict) else None
    uri = endpoint.get("uri") if isinstance(endpoint, dict) else None
    name = document.get("subscriptionName") or document.get("description")
    return SubscriptionView(
        subscription_id=row.subscription_id,
        name=name if isinstance(name, str) else None,
        endpoint=masked_uri(uri) if isinstance(uri, str) else None,
        is_active=row.is_active,
        expires_at=row.expires_at,
        times_sent=row.times_sent,
        times_failed=row.times_failed,
        last_notification=row.last_notification,
        last_success=row.last_success,
        last_failure=row.last_failure,
        last_failure_reason=row.last_failure_reason,
    )
