"""Entities of one type as rows of a table, for domains that publish context data in tabular form (the data
exchange's NGSI-LD-backed resources): one row per entity, one column per chosen attribute, holding the
attribute's plain value.

Names are given as an NGSI-LD client without a @context gives them: terms expand with the core @context
(``AirQualityObserved``, ``temperature``), absolute IRIs stay as they are (for types and attributes of other
contexts, e.g. Smart Data Models). The column ``id`` is the entity's id. What a value becomes:

- a Property: its value (a typed literal such as ``{"@type": "DateTime", "@value": ...}``: its ``@value``);
- a GeoProperty: a Point as ``"lon,lat"``, any other geometry as its GeoJSON text;
- a Relationship: the related entity's id; a VocabProperty: its term; a JsonProperty: its JSON text;
- other kinds (language maps, lists) as they are stored; a missing attribute: None.

An attribute with several instances gives its default instance (the one without ``datasetId``), else its
first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from sqlalchemy.orm import Session

from cityhub.domains.context.errors import NgsiError
from cityhub.domains.context.service.console import core_mapper
from cityhub.domains.context.service.query import EntityQuery, EntitySelector, each_entity
from cityhub.domains.context.service.tenants import TenantRef, authorize, check_tenant_name, find_tenant
from cityhub.domains.context.store.document import (
    GEOPROPERTY,
    JSON_PROPERTY,
    VALUE_MEMBER,
    VOCAB_PROPERTY,
    Instance,
    check_name,
    find_instance,
)
from cityhub.domains.identity import Principal
from cityhub.kernel.errors import NotFound, ValidationProblem
from cityhub.kernel.i18n import gettext as _

ENTITY_ID = "id"
READ = "context.entities.read"


def check_entity_reading(
    session: Session, principal: Principal, tenant: str | None, entity_type: str, attributes: Iterable[str]
) -> None:
    """That ``principal`` may read entities in ``tenant`` (None: the default tenant) and that the type and
    attribute names are names; Forbidden, NotFound or ValidationProblem otherwise."""
    authorize(principal, READ, _tenant(session, tenant))
    for what, name in (("entity_type", entity_type), *(("attributes", name) for name in attributes)):
        if name == ENTITY_ID and what == "attributes":
            continue
        try:
            check_name(core_mapper().expand_term(name))
        except NgsiError as exc:
            raise ValidationProblem(_("%(name)s is not an NGSI-LD name.", name=name), field=what) from exc


def entity_rows(
    session: Session, tenant: str | None, entity_type: str, columns: Mapping[str, str]
) -> Iterator[dict[str, Any]]:
    """One row per entity of ``entity_type`` in ``tenant`` (None: the default tenant), in a stable order:
    ``{column: plain value of the attribute the column names (or the entity id for "id")}``."""
    mapper = core_mapper()
    iris = {column: mapper.expand_term(name) for column, name in columns.items() if name != ENTITY_ID}
    query = EntityQuery(selectors=[EntitySelector(types=(mapper.expand_term(entity_type),))])
    for entity in each_entity(session, _tenant(session, tenant), query):
        yield {
            column: entity.entity_id if name == ENTITY_ID else _plain(entity.attrs.get(iris[column]))
            for column, name in columns.items()
        }


def _tenant(session: Session, name: str | None) -> TenantRef:
    try:
        return find_tenant(session, check_tenant_name(name), create=False)
    except NgsiError as exc:
        raise NotFound(_("The context hub has no tenant %(name)s.", name=name)) from exc


def _plain(instances: list[Instance] | None) -> Any:
    if not instances:
        return None
    found = find_instance(instances, None)
    instance = instances[found if found is not None else 0]
    kind = instance.get("type")
    value = instance.get(VALUE_MEMBER.get(kind or "", "value"))
    if kind == GEOPROPERTY and isinstance(value, dict):
        coordinates = value.get("coordinates")
        if value.get("type") == "Point" and isinstance(coordinates, list) and len(coordinates) >= 2:
            return f"{coordinates[0]},{coordinates[1]}"
        return json.dumps(value, ensure_ascii=False)
    if kind == VOCAB_PROPERTY and isinstance(value, str):
        return core_mapper().compact_iri(value)
    if kind == JSON_PROPERTY:
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict) and "@value" in value:
        return value["@value"]
    return value
